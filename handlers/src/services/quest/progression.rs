//! Progression: the experience quests granted and the level it reaches (DESIGN section 10: quest
//! awards experience, so quest owns it and the levels table).
//!
//! A player's experience lives in one record, `quest.xp.<player>`, holding one grant per
//! completed quest. Completing a quest adds its grant by compare-and-set, so parallel completions
//! add up and each level crossed is counted by exactly one of them; the grant keeps the levels
//! before and after it, so a repeated `Complete` answers the same level-up and never a second.

use proto::aicore::quest::v1::{PlayerLeveled, Progression};

use super::*;
use crate::kit::event_log::typed_event;

pub(super) fn ledger_key(player: &str) -> String {
    format!("quest.xp.{player}")
}

/// What the store keeps of a player's experience.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Ledger {
    /// The sum of the grants.
    pub(super) experience: u64,
    /// Quest id -> what completing it granted.
    pub(super) grants: BTreeMap<String, Grant>,
}

/// The experience one completed quest granted, and the levels around it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Grant {
    pub(super) experience: u32,
    pub(super) from_level: u32,
    pub(super) to_level: u32,
}

impl Grant {
    pub(super) fn levels_gained(&self) -> u32 {
        self.to_level.saturating_sub(self.from_level)
    }
}

/// The progression of `experience` against `levels` (experience needed for level 1, 2, ...; the
/// first is 0, as content checks). Past the top level the level stays at the top and there is no
/// next threshold.
pub fn progression(levels: &[u64], experience: u64) -> Progression {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let level = levels
        .iter()
        .take_while(|&&need| need <= experience)
        .count();
    Progression {
        level: clamp(level as u64).max(1),
        experience: clamp(experience),
        level_experience: level
            .checked_sub(1)
            .and_then(|i| levels.get(i))
            .map_or(0, |&n| clamp(n)),
        next_level_experience: levels.get(level).map_or(0, |&n| clamp(n)),
        max_level: clamp(levels.len() as u64),
        levels: levels.iter().map(|&n| clamp(n)).collect(),
    }
}

impl QuestService {
    /// The player's experience record and its version (0: none yet).
    pub(super) async fn ledger(&self, player: &str) -> Result<(Ledger, u64), Status> {
        match self.store.get(&ledger_key(player)).await? {
            Some(v) => {
                let ledger = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("experience record: {e}")))?;
                Ok((ledger, v.version))
            }
            None => Ok((Ledger::default(), 0)),
        }
    }

    /// The player's level now.
    pub(super) async fn level(&self, player: &str) -> Result<u32, Status> {
        let (ledger, _) = self.ledger(player).await?;
        Ok(self.quests.level_for(ledger.experience))
    }

    /// The player's progression now.
    pub(super) async fn progression_of(&self, player: &str) -> Result<Progression, Status> {
        let (ledger, _) = self.ledger(player).await?;
        Ok(progression(&self.quests.levels, ledger.experience))
    }

    /// Grants `experience` for completing `quest`, once: a repeat finds the grant made and
    /// returns it unchanged. Returns the grant and the player's experience now.
    pub(super) async fn grant_experience(
        &self,
        player: &str,
        quest: &str,
        experience: u32,
    ) -> Result<(Grant, u64), Status> {
        let key = ledger_key(player);
        for attempt in 0..MAX_ATTEMPTS {
            let (mut ledger, version) = self.ledger(player).await?;
            if let Some(grant) = ledger.grants.get(quest) {
                return Ok((*grant, ledger.experience));
            }
            let before = ledger.experience;
            ledger.experience = before.saturating_add(u64::from(experience));
            let grant = Grant {
                experience,
                from_level: self.quests.level_for(before),
                to_level: self.quests.level_for(ledger.experience),
            };
            ledger.grants.insert(quest.to_owned(), grant);
            let bytes = serde_json::to_vec(&ledger).map_err(|e| Status::internal(e.to_string()))?;
            match self
                .store
                .put(&key, Bytes::from(bytes), Some(version))
                .await
            {
                Ok(_) => return Ok((grant, ledger.experience)),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if attempt > 4 {
                tokio::task::yield_now().await;
            }
        }
        Err(Status::aborted(
            "the player's experience kept changing; retry",
        ))
    }

    /// Publishes `player.leveled` on the player's topic for the levels `grant` crossed, keyed by
    /// its cause (the quest completion), so a retry publishes nothing new.
    pub(super) async fn announce_level(
        &self,
        ctx: &Context,
        player: &str,
        quest: &str,
        grant: Grant,
    ) -> Result<(), Status> {
        if grant.levels_gained() == 0 {
            return Ok(());
        }
        let event = PlayerLeveled {
            old_level: grant.from_level,
            new_level: grant.to_level,
            quest_id: quest.to_owned(),
        };
        self.events
            .publish(
                ctx.outgoing()
                    .idempotent(format!("player-leveled:{player}:{quest}")),
                typed_event(format!("player.{player}"), &event)?,
            )
            .await
            .map(|_| ())
    }
}
