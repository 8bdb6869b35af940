//! Signed requests over NATS: who a request speaks for is believed only when a process holding
//! the signing keys (an edge, or a worker for its own calls) said so. NATS permissions bound who
//! may publish on which subject ([`super::permissions`]); this bounds what a publisher may claim.
//!
//! Every request a process with keys sends carries [`AUTH`]: `<key id> <issued-at> <MAC>`, the
//! issued-at in milliseconds since the Unix epoch and the MAC an HMAC-SHA256 (base64url, no
//! padding) over the subject, the key id, the issued-at and the headers that say who and what
//! the request is: [`SIGNED`], each as a 4-byte big-endian length and its bytes (a missing or
//! empty header counts as empty). A responder with keys answers only requests whose MAC one of
//! its keys verifies and whose issued-at is no older than the request's own deadline (bounded by
//! the responder's) plus [`MAX_SKEW`], and no further ahead than [`MAX_SKEW`]; anything else is
//! `unauthenticated`, before any handler runs. Keys rotate without downtime: the first key of the
//! list signs, any key of it verifies (add the new key second everywhere, then first, then drop
//! the old). Without keys a process signs nothing and believes every header (development, one
//! binary), and says so once at start.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use base64::Engine as _;
use handlers::Status;
use ring::hmac;
use serde::Deserialize;

use super::headers;

/// The signature header: `<key id> <issued-at ms> <MAC>`.
pub const AUTH: &str = "Edge-Auth";
/// How far the clocks of a sender and a responder may disagree.
pub const MAX_SKEW: Duration = Duration::from_secs(5);
/// The headers the MAC covers, in this order, after the subject, key id and issued-at.
pub const SIGNED: [&str; 8] = [
    headers::DEADLINE_MS,
    headers::REQUEST_ID,
    headers::PRINCIPAL,
    headers::SESSION,
    headers::CALL_CHAIN,
    headers::ORIGIN,
    headers::IDEMPOTENCY_KEY,
    headers::CLIENT_ADDR,
];
/// The shortest secret, in bytes (an HMAC-SHA256 key of less adds nothing but guessability).
const MIN_SECRET: usize = 32;
/// What the MAC input starts with, so it can never be another protocol's.
const DOMAIN: &[u8] = b"edge-nats-request-v1";

/// The configured keys as written, `id:base64-secret`: never printed (Debug shows the ids, the
/// config file skips them: this type has no `Serialize`, so it cannot be printed by accident).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KeyList(Vec<String>);

impl KeyList {
    /// Wraps `keys`.
    pub fn new(keys: Vec<String>) -> KeyList {
        KeyList(keys)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for KeyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self
            .0
            .iter()
            .map(|k| k.split_once(':').map_or("?", |(id, _)| id))
            .collect();
        write!(f, "KeyList{ids:?}")
    }
}

/// Keys that sign (the first) and verify (any) requests.
pub struct SigningKeys {
    keys: Vec<(String, hmac::Key)>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "SigningKeys{ids:?}")
    }
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn decode_secret(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text.trim()).ok())
}

impl SigningKeys {
    /// The keys of `list`, or None when it is empty. Errors name the key id, never the secret.
    pub fn parse(list: &KeyList) -> Result<Option<Arc<SigningKeys>>, String> {
        let mut keys: Vec<(String, hmac::Key)> = Vec::new();
        for (i, entry) in list.0.iter().enumerate() {
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(format!(
                    "nats.signing_keys: key #{} is not `id:base64-secret`",
                    i + 1
                ));
            };
            let id = id.trim();
            if !valid_id(id) {
                return Err(format!(
                    "nats.signing_keys: key #{} has id {id:?}; ids are 1 to 32 letters, digits, '-', '_' or '.'",
                    i + 1
                ));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(format!("nats.signing_keys: key id {id:?} is given twice"));
            }
            match decode_secret(secret) {
                Some(bytes) if bytes.len() >= MIN_SECRET => {
                    keys.push((id.to_owned(), hmac::Key::new(hmac::HMAC_SHA256, &bytes)));
                }
                _ => {
                    return Err(format!(
                        "nats.signing_keys: key {id:?} must be base64 of at least {MIN_SECRET} random bytes (e.g. `openssl rand -base64 32`)"
                    ));
                }
            }
        }
        Ok((!keys.is_empty()).then(|| Arc::new(SigningKeys { keys })))
    }

    /// Adds [`AUTH`] to the headers of a request about to be published on `subject`.
    pub fn sign(&self, subject: &str, h: &mut HeaderMap) {
        self.sign_at(subject, h, handlers::kit::clock::now_ms());
    }

    fn sign_at(&self, subject: &str, h: &mut HeaderMap, issued_ms: u64) {
        let Some((id, key)) = self.keys.first() else {
            return;
        };
        let mac = hmac::sign(key, &message(subject, id, issued_ms, h));
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_ref());
        let value = format!("{id} {issued_ms} {mac}");
        h.insert(headers::name(AUTH), value.as_str());
    }

    /// Checks the [`AUTH`] of a request received on `subject`; `max` bounds its deadline as the
    /// responder does.
    pub fn verify(
        &self,
        subject: &str,
        h: Option<&HeaderMap>,
        max: Duration,
    ) -> Result<(), Status> {
        self.verify_at(subject, h, max, handlers::kit::clock::now_ms())
    }

    fn verify_at(
        &self,
        subject: &str,
        h: Option<&HeaderMap>,
        max: Duration,
        now_ms: u64,
    ) -> Result<(), Status> {
        let refuse = |why: String| Err(Status::unauthenticated(why));
        let Some((h, auth)) = h.and_then(|h| Some((h, h.get(headers::name(AUTH))?))) else {
            return refuse(
                "this request over NATS carries no Edge-Auth signature; a process with \
                 [nats] signing_keys answers only requests signed by an edge or a worker"
                    .into(),
            );
        };
        let mut parts = auth.as_str().split(' ');
        let (Some(id), Some(issued), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return refuse("the Edge-Auth header is not `<key id> <issued-at> <mac>`".into());
        };
        let Ok(issued_ms) = issued.parse::<u64>() else {
            return refuse("the Edge-Auth issued-at is not a number".into());
        };
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == id) else {
            return refuse(format!(
                "the request is signed with key id {id:?}, which this process does not hold \
                 (give every edge and worker the same [nats] signing_keys)"
            ));
        };
        let Ok(mac) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac) else {
            return refuse("the Edge-Auth MAC is not base64url".into());
        };
        if hmac::verify(key, &message(subject, id, issued_ms, h), &mac).is_err() {
            return refuse(
                "the request's signature does not match what it carries: a principal, \
                 session, call chain, deadline or subject changed after an edge signed it"
                    .into(),
            );
        }
        let budget = h
            .get(headers::name(headers::DEADLINE_MS))
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .map_or(max, |ms| Duration::from_millis(ms).min(max));
        let skew = u64::try_from(MAX_SKEW.as_millis()).unwrap_or(u64::MAX);
        let budget = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        if issued_ms > now_ms.saturating_add(skew) {
            return refuse(format!(
                "the request was signed {} ms in the future: the clocks of the edge and this \
                 process disagree by more than {} s",
                issued_ms - now_ms,
                MAX_SKEW.as_secs()
            ));
        }
        let age = now_ms.saturating_sub(issued_ms);
        if age > budget.saturating_add(skew) {
            return refuse(format!(
                "the request was signed {age} ms ago, past its {budget} ms deadline (a replay, \
                 or clocks more than {} s apart)",
                MAX_SKEW.as_secs()
            ));
        }
        Ok(())
    }
}

/// Signs `h` for `subject` when there are keys.
pub fn signed(keys: Option<&SigningKeys>, subject: &str, mut h: HeaderMap) -> HeaderMap {
    if let Some(keys) = keys {
        keys.sign(subject, &mut h);
    }
    h
}

/// Says once, at start, that requests over NATS are neither signed nor checked.
pub fn warn_if_unsigned(keys: Option<&SigningKeys>) {
    if keys.is_none() {
        tracing::warn!(
            "NATS requests are not signed ([nats] signing_keys / EDGE_NATS_SIGNING_KEYS is \
             empty): this process believes any principal a NATS publisher claims. Give every \
             edge and worker the same keys in production (README, \"Services over NATS\")"
        );
    }
}

/// The MAC's input: the domain, then each field as a 4-byte length and its bytes.
fn message(subject: &str, id: &str, issued_ms: u64, h: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(DOMAIN);
    let mut field = |bytes: &[u8]| {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    };
    field(subject.as_bytes());
    field(id.as_bytes());
    field(issued_ms.to_string().as_bytes());
    for n in SIGNED {
        field(
            h.get(headers::name(n))
                .map_or("", |v| v.as_str())
                .as_bytes(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn keys(list: &[&str]) -> Arc<SigningKeys> {
        SigningKeys::parse(&KeyList::new(
            list.iter().map(|s| (*s).to_owned()).collect(),
        ))
        .unwrap()
        .unwrap()
    }

    fn request(principal: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::DEADLINE_MS, "2000");
        h.insert(headers::REQUEST_ID, "r1");
        h.insert(headers::PRINCIPAL, principal);
        h
    }

    const NOW: u64 = 1_700_000_000_000;
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn a_signed_request_verifies_and_any_change_does_not() {
        let k = keys(&[K1]);
        let mut h = request("player p1");
        k.sign_at("svc.state.v1.get", &mut h, NOW);
        assert!(
            h.get(AUTH)
                .unwrap()
                .as_str()
                .starts_with("k1 1700000000000 ")
        );
        k.verify_at("svc.state.v1.get", Some(&h), MAX, NOW + 100)
            .unwrap();
        // Another subject, principal, session, chain or deadline: refused.
        assert!(k.verify_at("svc.state.v1.put", Some(&h), MAX, NOW).is_err());
        for (name, value) in [
            (headers::PRINCIPAL, "player p2"),
            (headers::SESSION, "s2"),
            (headers::CALL_CHAIN, "weather"),
            (headers::DEADLINE_MS, "60000"),
            (headers::ORIGIN, "player p2"),
            (headers::REQUEST_ID, "r2"),
        ] {
            let mut forged = h.clone();
            forged.insert(name, value);
            let err = k
                .verify_at("svc.state.v1.get", Some(&forged), MAX, NOW)
                .unwrap_err();
            assert_eq!(err.code(), handlers::Code::Unauthenticated, "{name}");
            assert!(
                err.message().contains("does not match"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn unsigned_unknown_and_stale_requests_are_refused_clearly() {
        let k = keys(&[K1]);
        let unsigned = request("player p1");
        let err = k.verify_at("s", Some(&unsigned), MAX, NOW).unwrap_err();
        assert!(err.message().contains("no Edge-Auth"), "{}", err.message());
        assert!(k.verify_at("s", None, MAX, NOW).is_err());
        let mut other = request("player p1");
        keys(&[K2]).sign_at("s", &mut other, NOW);
        let err = k.verify_at("s", Some(&other), MAX, NOW).unwrap_err();
        assert!(err.message().contains("\"k2\""), "{}", err.message());
        let mut h = request("player p1");
        k.sign_at("s", &mut h, NOW);
        // Its deadline (2 s) plus the skew (5 s) is its life.
        k.verify_at("s", Some(&h), MAX, NOW + 7_000).unwrap();
        let err = k.verify_at("s", Some(&h), MAX, NOW + 7_001).unwrap_err();
        assert!(err.message().contains("ago"), "{}", err.message());
        // The responder's own bound wins over a longer deadline.
        let mut long = request("player p1");
        long.insert(headers::DEADLINE_MS, "3600000");
        k.sign_at("s", &mut long, NOW);
        assert!(k.verify_at("s", Some(&long), MAX, NOW + 36_000).is_err());
        // From the future, past the skew.
        assert!(k.verify_at("s", Some(&h), MAX, NOW - 5_001).is_err());
        k.verify_at("s", Some(&h), MAX, NOW - 5_000).unwrap();
        for garbled in ["k1", "k1 x y", "k1 1 !!", "k1 1 AAAA extra"] {
            let mut g = h.clone();
            g.insert(AUTH, garbled);
            assert!(k.verify_at("s", Some(&g), MAX, NOW).is_err(), "{garbled}");
        }
    }

    #[test]
    fn keys_rotate_the_first_signs_and_any_verifies() {
        let old = keys(&[K1]);
        let both = keys(&[K2, K1]);
        let mut by_old = request("player p1");
        old.sign_at("s", &mut by_old, NOW);
        both.verify_at("s", Some(&by_old), MAX, NOW).unwrap();
        let mut by_new = request("player p1");
        both.sign_at("s", &mut by_new, NOW);
        assert!(by_new.get(AUTH).unwrap().as_str().starts_with("k2 "));
        assert!(old.verify_at("s", Some(&by_new), MAX, NOW).is_err());
        keys(&[K1, K2])
            .verify_at("s", Some(&by_new), MAX, NOW)
            .unwrap();
    }

    #[test]
    fn bad_key_lists_are_refused_without_their_secret() {
        let parse = |list: &[&str]| {
            SigningKeys::parse(&KeyList::new(
                list.iter().map(|s| (*s).to_owned()).collect(),
            ))
        };
        assert!(parse(&[]).unwrap().is_none());
        for bad in [
            &["nocolon"][..],
            &["k1:c2hvcnQ="],
            &["bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="],
            &[K1, K1],
            &["k1:not base64 at all, not at all, no no no no no"],
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("AAEC") && !err.contains("c2hv"), "{err}");
        }
        let list = KeyList::new(vec![K1.into(), K2.into()]);
        assert_eq!(format!("{list:?}"), "KeyList[\"k1\", \"k2\"]");
        assert!(!format!("{:?}", keys(&[K1])).contains("AAEC"));
    }
}
