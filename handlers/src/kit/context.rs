//! What travels with every call: who is calling, until when, and the ids that tie logs together.

use std::time::{Duration, Instant};

use proto::{Access, MethodDesc};

use crate::kit::status::Status;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A player with a verified access token.
    Player {
        /// Their player id.
        player_id: String,
    },
    /// A game server or tool with a service key.
    Service {
        /// The key's name.
        name: String,
        /// `*`, a service (`payment`), or a method (`payment.Credit`).
        scopes: std::sync::Arc<[String]>,
    },
}

impl Principal {
    /// A short description for logs; never a secret.
    pub fn describe(&self) -> String {
        match self {
            Principal::Player { player_id } => format!("player:{player_id}"),
            Principal::Service { name, .. } => format!("service:{name}"),
        }
    }
}

/// The login session a player's access token (or stream ticket) belongs to: a stream ticket is
/// bound to it, and a stream ends when it is logged out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(pub std::sync::Arc<str>);

/// The per-call context handed to handlers.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The caller, if authenticated.
    pub principal: Option<Principal>,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The request id (from `X-Request-Id` or generated).
    pub request_id: String,
    /// The client's `Idempotency-Key`, for mutating methods.
    pub idempotency_key: Option<String>,
    /// The W3C `traceparent` of the call.
    pub traceparent: Option<String>,
    /// The client's address (from a trusted proxy's `X-Forwarded-For`, else the peer), for
    /// per-address limits.
    pub client_addr: Option<std::net::IpAddr>,
    /// When a service called this one: the services on the way here, outermost first, the
    /// direct caller last (see [`crate::kit::calls`]). Empty for a client's call.
    pub chain: Vec<&'static str>,
    /// The player's login session, when the principal is a player who proved one.
    pub session: Option<SessionId>,
    /// For a call between services: whom the chain's costs are charged to (DESIGN section 10,
    /// "cost follows the origin"): the player the chain acts for, else the client principal that
    /// started it. `None` on a client's own call, where [`Context::payer`] is the principal.
    pub origin: Option<Principal>,
    /// The client's `Accept-Language` (at most [`MAX_ACCEPT_LANGUAGE`] bytes of visible ASCII),
    /// carried along calls between services: text a player reads is in their settings'
    /// language, else this one's, else English.
    pub accept_language: Option<String>,
}

/// Longest `Accept-Language` kept.
pub const MAX_ACCEPT_LANGUAGE: usize = 256;

/// An `Accept-Language` value worth keeping: visible ASCII, bounded; anything else is dropped.
pub fn accept_language(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()
        && v.len() <= MAX_ACCEPT_LANGUAGE
        && v.bytes().all(|b| (0x20..0x7f).contains(&b)))
    .then(|| v.to_owned())
}

impl Context {
    /// Time left before the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Who pays for what this call costs (model tokens, spend caps): the chain's origin, else
    /// the caller itself.
    pub fn payer(&self) -> Option<&Principal> {
        self.origin.as_ref().or(self.principal.as_ref())
    }

    /// The player a call acts for. A player acts only for themself (`requested` empty or their
    /// own id); a service principal must name the player.
    pub fn player(&self, requested: &str) -> Result<String, Status> {
        match &self.principal {
            Some(Principal::Player { player_id }) => {
                if requested.is_empty() || requested == player_id {
                    Ok(player_id.clone())
                } else {
                    Err(Status::permission_denied(
                        "a player may act only on their own data",
                    ))
                }
            }
            Some(Principal::Service { .. }) => {
                if requested.is_empty() {
                    Err(Status::invalid_argument(
                        "playerId is required for service callers",
                    ))
                } else {
                    validate_player_id(requested)?;
                    Ok(requested.to_owned())
                }
            }
            None => Err(Status::unauthenticated("authentication required")),
        }
    }
}

/// Player ids are the 32 lowercase hex digits auth hands out.
pub fn validate_player_id(id: &str) -> Result<(), Status> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Status::invalid_argument(
            "playerId is not a valid player id",
        ))
    }
}

/// Whether a service principal's scopes cover a method: `*`, `svc` or `svc.Method`.
pub fn scope_allows(scopes: &[String], m: &MethodDesc) -> bool {
    scopes.iter().any(|s| {
        // Broad scopes (`*`, a whole service) never reach admin methods; those need `svc.Method`.
        (m.access != Access::Admin && (s == "*" || s == m.service))
            || s.split_once('.')
                .is_some_and(|(svc, method)| svc == m.service && method == m.name)
    })
}

/// Decides whether `principal` may call `m`.
pub fn authorize(principal: Option<&Principal>, m: &MethodDesc) -> Result<(), Status> {
    match (m.access, principal) {
        (Access::Public, _) => Ok(()),
        (_, None) => Err(Status::unauthenticated("missing bearer token")),
        (Access::Player, Some(Principal::Player { .. })) => Ok(()),
        (Access::Service | Access::Admin, Some(Principal::Player { .. })) => Err(
            Status::permission_denied(format!("{} needs a service key", m.path)),
        ),
        (_, Some(Principal::Service { scopes, .. })) => {
            if scope_allows(scopes, m) {
                Ok(())
            } else {
                let needs = if m.access == Access::Admin {
                    format!(
                        "{}.{} (an admin method: `*` and `{}` do not cover it)",
                        m.service, m.name, m.service
                    )
                } else {
                    format!("{}, {}.{} or *", m.service, m.service, m.name)
                };
                Err(Status::permission_denied(format!(
                    "the key's scopes do not cover {}; it needs scope {needs}",
                    m.path
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::status::Code;

    fn player(id: &str) -> Context {
        Context {
            principal: Some(Principal::Player {
                player_id: id.into(),
            }),
            ..Context::default()
        }
    }

    #[test]
    fn players_act_only_for_themselves() {
        let me = "0123456789abcdef0123456789abcdef";
        let ctx = player(me);
        assert_eq!(ctx.player("").unwrap(), me);
        assert_eq!(ctx.player(me).unwrap(), me);
        assert_eq!(
            ctx.player("ffffffffffffffffffffffffffffffff")
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            Context::default().player("").unwrap_err().code(),
            Code::Unauthenticated
        );
    }

    #[test]
    fn services_name_the_player() {
        let ctx = Context {
            principal: Some(Principal::Service {
                name: "gs".into(),
                scopes: vec!["*".into()].into(),
            }),
            ..Context::default()
        };
        assert_eq!(ctx.player("").unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(
            ctx.player("nope").unwrap_err().code(),
            Code::InvalidArgument
        );
        assert!(ctx.player("0123456789abcdef0123456789abcdef").is_ok());
    }
}
