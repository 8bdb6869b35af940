//! The player's own view: level and experience (quest), where they are (world), money and items
//! (payment), fetched concurrently from their owners and never stored here (DESIGN section 10).
//! A part that fails is named, as Bootstrap names its parts; a caller's mistake fails the call.

use proto::aicore::bodybroker::v1::PlayerView;
use proto::aicore::payment::v1::{GetBalanceRequest, GetInventoryRequest};
use proto::aicore::quest::v1::GetProgressionRequest;
use proto::aicore::world::v1::{LocatePlayerRequest, LocatePlayerResponse};

use super::*;

/// A part of the view that could not be had, and why.
pub(super) type Missing = (&'static str, Status);

/// `parts` carrying the player's language, as their `settings` say it, to the services that serve
/// the view's text (`crate::kit::l10n::VIEW_CALLERS`). Never chosen (or unread), the client's
/// own `Accept-Language` stands.
pub(super) fn speaking(
    mut parts: Context,
    settings: Option<&proto::aicore::settings::v1::GetResponse>,
) -> Context {
    if let Some(s) = settings
        && s.version > 0
        && let Some(language) = s.settings.as_ref().map(|s| s.language.as_str())
    {
        parts.accept_language = crate::kit::context::accept_language(language);
    }
    parts
}

impl BodyBrokerService {
    /// `parts` in `player`'s language: one read of their settings.
    pub(super) async fn in_players_language(&self, parts: Context, player: &str) -> Context {
        let settings = self
            .settings
            .get(
                parts.outgoing(),
                GetRequest {
                    player_id: player.to_owned(),
                },
            )
            .await;
        speaking(parts, settings.as_ref().ok())
    }

    /// Where `player` is, from world.
    pub(super) async fn locate(
        &self,
        parts: &Context,
        player: &str,
    ) -> Result<LocatePlayerResponse, Status> {
        self.world
            .locate_player(
                parts.outgoing(),
                LocatePlayerRequest {
                    player_id: player.to_owned(),
                },
            )
            .await
    }

    /// The view of `player`. `located`: where they are, when the caller asked already.
    pub(super) async fn view(
        &self,
        parts: &Context,
        player: &str,
        located: Option<Result<LocatePlayerResponse, Status>>,
    ) -> (PlayerView, Vec<Missing>) {
        let named = || player.to_owned();
        let (progression, balance, inventory, located) = tokio::join!(
            self.quest.get_progression(
                parts.outgoing(),
                GetProgressionRequest { player_id: named() }
            ),
            self.payment
                .get_balance(parts.outgoing(), GetBalanceRequest { player_id: named() }),
            self.payment
                .get_inventory(parts.outgoing(), GetInventoryRequest { player_id: named() }),
            async {
                match located {
                    Some(done) => done,
                    None => self.locate(parts, player).await,
                }
            },
        );
        let mut view = PlayerView {
            player_id: named(),
            ..PlayerView::default()
        };
        let mut missing = Vec::new();
        match progression {
            Ok(p) => view.progression = p.progression,
            Err(e) => missing.push(("progression", e)),
        }
        match located {
            Ok(at) => {
                view.region_id = at.region_id;
                view.position = at.position;
                view.placed = at.entity.is_some();
            }
            Err(e) => missing.push(("location", e)),
        }
        match balance {
            Ok(b) => view.balance = b.balance,
            Err(e) => missing.push(("balance", e)),
        }
        match inventory {
            Ok(i) => view.inventory = i.inventory,
            Err(e) => missing.push(("inventory", e)),
        }
        (view, missing)
    }
}
