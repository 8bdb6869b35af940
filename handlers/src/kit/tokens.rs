//! Access tokens: EdDSA (Ed25519) JWTs with a key id. Signing keys live in the store, so every
//! replica and every restart verifies the same tokens.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

const ISSUER: &str = "edge";
const AUDIENCE: &str = "aicore";
const CURRENT_KEY: &str = "auth.signing.current";
const KEY_PREFIX: &str = "auth.signing.keys.";
/// Clock skew tolerated between replicas.
pub(crate) const LEEWAY_SECS: u64 = 2;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer, always "edge".
    pub iss: String,
    /// Audience, always "aicore".
    pub aud: String,
    /// The player id.
    pub sub: String,
    /// The session (refresh-token family) the token was issued in.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

/// The audience of stream tickets: never accepted as an access token, nor one as a ticket.
const TICKET_AUDIENCE: &str = "aicore-stream-ticket";

/// The claims of a stream ticket (see [`TokenKeys::issue_ticket`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TicketClaims {
    /// Issuer, always "edge".
    pub iss: String,
    /// Audience, always [`TICKET_AUDIENCE`].
    pub aud: String,
    /// The player id.
    pub sub: String,
    /// A random id: the ticket's single use is recorded under it.
    pub jti: String,
    /// The login session it was asked for in: a logout recalls the ticket. Empty on tickets
    /// signed before sessions were bound (refused; they live a minute at most).
    #[serde(default)]
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 v2 document, base64. Secret: never logged.
    pkcs8: String,
    created_ms: u64,
}

/// A signed stream ticket and what it says.
#[derive(Debug)]
pub struct TicketClaimsSigned {
    /// The ticket as the client sends it.
    pub ticket: String,
    /// Its claims.
    pub claims: TicketClaims,
}

/// Signs and verifies access tokens.
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    ticket_validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn public_key(pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    Ed25519KeyPair::from_pkcs8(pkcs8)
        .map(|kp| kp.public_key().as_ref().to_vec())
        .map_err(|_| "stored signing key is not a valid Ed25519 PKCS#8 document".to_owned())
}

impl TokenKeys {
    /// Loads the current signing key from the store, creating it on first start. Safe when several
    /// replicas start at once: compare-and-set decides which key becomes current.
    pub async fn load_or_create(store: &dyn Store, ttl: Duration) -> Result<Self, StoreError> {
        let current = match store.get(CURRENT_KEY).await? {
            Some(v) => String::from_utf8_lossy(&v.value).into_owned(),
            None => {
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| StoreError::Backend("cannot generate a signing key".into()))?;
                let kid = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
                let record = StoredKey {
                    kid: kid.clone(),
                    pkcs8: STANDARD.encode(doc.as_ref()),
                    created_ms: crate::kit::clock::now_ms(),
                };
                let json =
                    serde_json::to_vec(&record).map_err(|e| StoreError::Backend(e.to_string()))?;
                store
                    .put(&format!("{KEY_PREFIX}{kid}"), Bytes::from(json), Some(0))
                    .await?;
                match store
                    .put(CURRENT_KEY, Bytes::from(kid.clone()), Some(0))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(kid = %kid, "created a new token signing key");
                        kid
                    }
                    // Another replica won the race: use its key.
                    Err(StoreError::Conflict { .. }) => match store.get(CURRENT_KEY).await? {
                        Some(v) => String::from_utf8_lossy(&v.value).into_owned(),
                        None => return Err(StoreError::Backend("signing key vanished".into())),
                    },
                    Err(e) => return Err(e),
                }
            }
        };

        let mut decoding = HashMap::new();
        let mut encoding = None;
        let mut after: Option<String> = None;
        let add = |value: &[u8],
                   decoding: &mut HashMap<String, DecodingKey>,
                   encoding: &mut Option<EncodingKey>|
         -> Result<(), StoreError> {
            let record: StoredKey = serde_json::from_slice(value)
                .map_err(|e| StoreError::Backend(format!("corrupt signing key record: {e}")))?;
            let der = STANDARD
                .decode(&record.pkcs8)
                .map_err(|_| StoreError::Backend("corrupt signing key encoding".into()))?;
            let public = public_key(&der).map_err(StoreError::Backend)?;
            decoding.insert(record.kid.clone(), DecodingKey::from_ed_der(&public));
            if record.kid == current {
                *encoding = Some(EncodingKey::from_ed_der(&der));
            }
            Ok(())
        };
        loop {
            let page = store.list(KEY_PREFIX, after.as_deref(), 100).await?;
            for (_, v) in &page.entries {
                add(&v.value, &mut decoding, &mut encoding)?;
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // A listing on a replicated store may come from a replica a moment behind: the key
        // another process has just made current is then read by itself.
        if encoding.is_none()
            && let Some(v) = store.get(&format!("{KEY_PREFIX}{current}")).await?
        {
            add(&v.value, &mut decoding, &mut encoding)?;
        }
        let encoding = encoding.ok_or_else(|| {
            StoreError::Backend(format!("current signing key {current} is missing"))
        })?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        let mut ticket_validation = validation.clone();
        ticket_validation.set_audience(&[TICKET_AUDIENCE]);
        ticket_validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud", "jti"]);
        // A ticket lives seconds: one second of skew between replicas, not the tokens' two.
        ticket_validation.leeway = 1;
        Ok(TokenKeys {
            kid: current,
            encoding,
            decoding,
            validation,
            ticket_validation,
            ttl,
        })
    }

    /// How long an access token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token for `player_id` in session `sid`.
    pub fn issue(&self, player_id: &str, sid: &str) -> Result<String, Status> {
        let now = crate::kit::clock::now_ms() / 1000;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: player_id.into(),
            sid: sid.into(),
            iat: now,
            exp: now + self.ttl.as_secs().max(1),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Status::internal)
    }

    /// Verifies signature, key id, issuer, audience and expiry. Pure CPU, no I/O.
    pub fn verify(&self, token: &str) -> Result<Claims, Status> {
        self.decode(
            token,
            &self.validation,
            "invalid access token",
            "access token expired; refresh it",
        )
    }

    /// Checks a signed token of ours (EdDSA, by a known key id) against `validation`: its
    /// claims, or `invalid` / `expired` as an unauthenticated status (never why it was invalid).
    fn decode<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
        invalid: &'static str,
        expired: &'static str,
    ) -> Result<C, Status> {
        let refused = || Status::unauthenticated(invalid);
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused())?;
        if header.alg != Algorithm::EdDSA {
            return Err(refused());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or_else(refused)?;
        match jsonwebtoken::decode::<C>(token, key, validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(Status::unauthenticated(expired))
            }
            Err(_) => Err(refused()),
        }
    }

    /// Signs a stream ticket for `player_id` in session `sid`, alive for `ttl`, with a fresh
    /// random id.
    pub fn issue_ticket(
        &self,
        player_id: &str,
        sid: &str,
        ttl: Duration,
    ) -> Result<TicketClaimsSigned, Status> {
        let now = crate::kit::clock::now_ms() / 1000;
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let claims = TicketClaims {
            iss: ISSUER.into(),
            aud: TICKET_AUDIENCE.into(),
            sub: player_id.into(),
            jti: id.iter().map(|b| format!("{b:02x}")).collect(),
            sid: sid.into(),
            iat: now,
            exp: now + ttl.as_secs().max(1),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let ticket =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Status::internal)?;
        Ok(TicketClaimsSigned { ticket, claims })
    }

    /// Verifies a stream ticket's signature, key id, issuer, audience and expiry (not its single
    /// use: that needs the store). Pure CPU.
    pub fn verify_ticket(&self, ticket: &str) -> Result<TicketClaims, Status> {
        self.decode(
            ticket,
            &self.ticket_validation,
            "invalid stream ticket",
            "stream ticket expired; ask for a new one",
        )
    }

    /// The key id tokens are signed with now.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::status::Code;
    use crate::kit::store::RedbStore;

    #[tokio::test]
    async fn issue_verify_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let token = {
            let store = RedbStore::open(&path).unwrap();
            let keys = TokenKeys::load_or_create(&store, Duration::from_secs(60))
                .await
                .unwrap();
            let token = keys.issue("p1", "s1").unwrap();
            assert_eq!(keys.verify(&token).unwrap().sub, "p1");
            token
        };
        // A restart verifies tokens signed before it.
        let store = RedbStore::open(&path).unwrap();
        let keys = TokenKeys::load_or_create(&store, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(keys.verify(&token).unwrap().sid, "s1");
    }

    #[tokio::test]
    async fn tickets_and_access_tokens_are_never_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("t.redb")).unwrap();
        let keys = TokenKeys::load_or_create(&store, Duration::from_secs(60))
            .await
            .unwrap();
        let t = keys
            .issue_ticket("p1", "s1", Duration::from_secs(30))
            .unwrap();
        let claims = keys.verify_ticket(&t.ticket).unwrap();
        assert_eq!(claims.sub, "p1");
        assert_eq!(claims.jti.len(), 32);
        assert_eq!(claims.exp - claims.iat, 30);
        assert!(
            keys.verify(&t.ticket).is_err(),
            "a ticket is not an access token"
        );
        let access = keys.issue("p1", "s1").unwrap();
        assert!(
            keys.verify_ticket(&access).is_err(),
            "an access token is not a ticket"
        );
        let other = keys
            .issue_ticket("p1", "s1", Duration::from_secs(30))
            .unwrap();
        assert_ne!(other.claims.jti, claims.jti);
        assert!(keys.verify_ticket("not.a.ticket").is_err());
    }

    #[tokio::test]
    async fn forged_and_tampered_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("a.redb")).unwrap();
        let keys = TokenKeys::load_or_create(&store, Duration::from_secs(60))
            .await
            .unwrap();
        let other_store = RedbStore::open(&dir.path().join("b.redb")).unwrap();
        let other = TokenKeys::load_or_create(&other_store, Duration::from_secs(60))
            .await
            .unwrap();

        let forged = other.issue("p1", "s").unwrap();
        assert_eq!(
            keys.verify(&forged).unwrap_err().code(),
            Code::Unauthenticated
        );

        let good = keys.issue("p1", "s").unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"iss":"edge","aud":"aicore","sub":"p2","sid":"s","iat":1,"exp":99999999999}"#,
        );
        parts[1] = &evil;
        assert!(keys.verify(&parts.join(".")).is_err());
        assert!(keys.verify("not-a-jwt").is_err());
        // alg=none is refused.
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"none","typ":"JWT"}"#),
            evil
        );
        assert!(keys.verify(&none).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn keys() -> (tempfile::TempDir, TokenKeys) {
            let dir = tempfile::tempdir().unwrap();
            let store = RedbStore::open(&dir.path().join("k.redb")).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let keys = rt
                .block_on(TokenKeys::load_or_create(&store, Duration::from_secs(60)))
                .unwrap();
            (dir, keys)
        }

        #[test]
        fn any_token_text_verifies_or_is_refused() {
            let (_dir, keys) = keys();
            proptest!(|(text in ".{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3))| {
                prop_assert!(keys.verify(&text).is_err());
                prop_assert!(keys.verify_ticket(&text).is_err());
                // Well-formed base64url segments with any content: refused, never a panic.
                let joined = parts.join(".");
                prop_assert!(keys.verify(&joined).is_err());
                prop_assert!(keys.verify_ticket(&joined).is_err());
            });
        }

        #[test]
        fn any_header_and_claims_json_is_refused_unless_signed() {
            let (_dir, keys) = keys();
            proptest!(|(header in ".{0,120}", claims in ".{0,200}")| {
                let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
                let token = format!("{}.{}.{}", b64(&header), b64(&claims), b64("sig"));
                prop_assert!(keys.verify(&token).is_err());
            });
        }

        #[test]
        fn claims_round_trip() {
            let (_dir, keys) = keys();
            proptest!(|(player in ".{1,64}", sid in "[a-f0-9]{1,64}")| {
                let token = keys.issue(&player, &sid).unwrap();
                let claims = keys.verify(&token).unwrap();
                prop_assert_eq!(claims.sub, player.clone());
                prop_assert_eq!(claims.sid, sid.clone());
                let ticket = keys.issue_ticket(&player, &sid, Duration::from_secs(30)).unwrap();
                let claims = keys.verify_ticket(&ticket.ticket).unwrap();
                prop_assert_eq!(claims.sub, player);
                prop_assert_eq!(claims.sid, sid);
            });
        }
    }
}
