//! Where a player is. A player's entity (`player-<id>`) lives under the region it is in, so
//! finding it by player needs to know the region: a hint, `world.where.<player>`, names the
//! region of the last upsert. The hint is written after the entity's commit and may be stale
//! (a failed write, a removal, a crash in between), so it is only ever a first guess: when the
//! entity is not where the hint says, every region is read and the newest record wins (a move is
//! an upsert into the new region before the removal from the old one, and store versions are
//! store-wide, so the newest record is where the player went).

use super::*;
use proto::aicore::world::v1::{LocatePlayerResponse, Vec3};

fn hint_key(player: &str) -> String {
    format!("world.where.{player}")
}

/// The player an entity id belongs to, if it is a player's entity.
fn player_of(entity_id: &str) -> Option<&str> {
    entity_id.strip_prefix("player-").filter(|p| !p.is_empty())
}

impl WorldService {
    /// After a committed upsert: remembers the region of a player's entity. Best effort, as the
    /// hint is only a guess.
    pub(super) async fn remember_region(&self, entity_id: &str, region: &str) {
        let Some(player) = player_of(entity_id) else {
            return;
        };
        let key = hint_key(player);
        if crate::kit::store::validate_key(&key).is_err() {
            return;
        }
        if let Err(e) = self
            .store
            .put(&key, Bytes::copy_from_slice(region.as_bytes()), None)
            .await
        {
            tracing::debug!(region, error = %e, "player region hint not written; locating reads every region");
        }
    }

    /// Where `player` is (see the module's comment).
    pub(super) async fn locate(&self, player: &str) -> Result<LocatePlayerResponse, Status> {
        let own = format!("player-{player}");
        let key = hint_key(player);
        let hinted = match self.store.get(&key).await? {
            Some(v) => String::from_utf8(v.value.to_vec()).ok(),
            None => None,
        };
        let mut found = None;
        if let Some(rid) = hinted.as_deref().filter(|r| self.regions.get(r).is_some()) {
            found = self.read_entity(rid, &own).await?;
        }
        if found.is_none() {
            let mut newest: Option<Entity> = None;
            for r in &self.regions.list {
                if let Some(e) = self.read_entity(&r.region.id, &own).await?
                    && newest.as_ref().is_none_or(|n| e.version > n.version)
                {
                    newest = Some(e);
                }
            }
            if let Some(e) = &newest {
                self.remember_region(&e.id, &e.region_id).await;
            }
            found = newest;
        }
        Ok(match found {
            Some(e) => LocatePlayerResponse {
                region_id: e.region_id.clone(),
                position: e.position,
                entity: Some(e),
            },
            None => {
                let [x, y, z] = self.regions.start_position;
                LocatePlayerResponse {
                    region_id: self.regions.start_region.clone(),
                    position: Some(Vec3 { x, y, z }),
                    entity: None,
                }
            }
        })
    }
}
