//! `aicore.quest.v1.QuestService`: quest definitions (shipped as data, see [`content`]) and each
//! player's progress.
//!
//! A player's progress on one quest is one record, `quest.p.<player>.<quest>`, changed only by
//! compare-and-set, so parallel `Progress` calls add up exactly. A player's experience and level
//! are quest's too (`progression.rs`): one grant per completed quest, fixed when made, so editing
//! a quest's reward later changes nobody's past. `Complete` pays through payment as a call
//! between services, keyed by (player, quest), then grants the experience (also once per quest):
//! a retry, or a retry after the process died between the payment and the record, finds both
//! already made and adds nothing. It then publishes `quest.completed` on the player's topic,
//! keyed the same way, so once, and `player.leveled` after it when the level rose.
//!
//! Every quest a player is served comes with its definition inline (`QuestProgress.quest`), so
//! the log draws from one call; `availability.rs` says why a quest cannot be accepted yet.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

mod availability;
pub mod content;
mod localized;
mod progression;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::payment::v1::{GrantRequest, ItemGrant, PaymentServiceClient};
use proto::aicore::quest::v1::{
    AbandonRequest, AbandonResponse, AcceptRequest, AcceptResponse, AdvanceRequest,
    AdvanceResponse, CompleteRequest, CompleteResponse, GetLogRequest, GetLogResponse,
    GetProgressionRequest, GetProgressionResponse, GetQuestRequest, GetQuestResponse,
    ListAvailableRequest, ListAvailableResponse, ProgressRequest, ProgressResponse, QuestProgress,
    QuestServiceHandler, QuestStatus, Reward,
};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use serde::{Deserialize, Serialize};

pub use content::{QuestDef, Quests, TALKED_TO};

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

mod journal;
pub use journal::*;
use progression::Grant;
pub use progression::progression;

impl QuestServiceHandler for QuestService {
    type Context = Context;
    type Error = Status;

    async fn list_available(
        &self,
        ctx: Context,
        req: ListAvailableRequest,
    ) -> Result<ListAvailableResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let records = self.records(&player).await?;
        let level = self.level(&player).await?;
        let (open, mut locked) = availability::offer(&self.quests, &records, level);
        let reader = self.reader(&ctx, &player).await;
        let mut quests: Vec<_> = open.into_iter().map(|q| q.definition.clone()).collect();
        for q in quests
            .iter_mut()
            .chain(locked.iter_mut().filter_map(|l| l.quest.as_mut()))
        {
            localized::localize(q, &reader);
        }
        Ok(ListAvailableResponse {
            quests,
            locked,
            locale: reader.locale().to_owned(),
        })
    }

    async fn accept(&self, ctx: Context, req: AcceptRequest) -> Result<AcceptResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let id = &q.definition.id;
        let at = self.game_now(&ctx).await?;
        // Levels only rise, so one read serves every attempt.
        let level = self.level(&player).await?;
        for _ in 0..MAX_ATTEMPTS {
            // This quest's own state from the one read whose version the write is checked
            // against; the others (prerequisites, level) from the listing.
            let own = self.read(&player, id).await?;
            if let (Some((record, _)), Some(key)) = (&own, caller_key(&ctx))
                && record.status == Stage::Active
                && record.accepted_key == key
            {
                // This very acceptance, retried.
                return Ok(AcceptResponse {
                    progress: Some(self.as_read(&ctx, &player, record.progress(q)).await),
                });
            }
            let mut records = self.records(&player).await?;
            records.remove(id);
            let version = match own {
                Some((record, version)) => {
                    records.insert(id.clone(), record);
                    version
                }
                None => 0,
            };
            if let Some(why) =
                availability::refusal(q, &availability::locks(q, &records, level), level)
            {
                return Err(why);
            }
            let record = Record {
                status: Stage::Active,
                objectives: q
                    .definition
                    .objectives
                    .iter()
                    .map(|o| (o.id.clone(), 0))
                    .collect(),
                accepted_game_ms: at,
                accepted_wall_ms: wall_ms(),
                accepted_key: caller_key(&ctx).unwrap_or_default(),
                ..Record::default()
            };
            if self.write(&player, id, &record, version).await?.is_some() {
                return Ok(AcceptResponse {
                    progress: Some(self.as_read(&ctx, &player, record.progress(q)).await),
                });
            }
        }
        Err(Status::aborted(format!("quest {id} kept changing; retry")))
    }

    async fn progress(
        &self,
        ctx: Context,
        req: ProgressRequest,
    ) -> Result<ProgressResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let id = &q.definition.id;
        let Some(objective) = q
            .definition
            .objectives
            .iter()
            .find(|o| o.id == req.objective_id)
        else {
            return Err(Status::not_found(format!(
                "quest {id} has no objective {:?}",
                req.objective_id
            )));
        };
        if req.amount == 0 || req.amount > content_max_amount() {
            return Err(Status::invalid_argument(format!(
                "amount must be 1 to {}",
                content_max_amount()
            )));
        }
        match self
            .bump(
                &player,
                q,
                &objective.id,
                objective.target_count,
                req.amount,
                None,
            )
            .await?
        {
            Bumped::Moved(progress) | Bumped::AtTarget(progress) => Ok(ProgressResponse {
                progress: Some(progress),
            }),
            Bumped::NotAccepted => Err(Status::failed_precondition(format!(
                "quest {id} is not active; accept it first"
            ))),
            Bumped::NotActive => Err(Status::failed_precondition(format!(
                "quest {id} is not active"
            ))),
        }
    }

    async fn advance(&self, ctx: Context, req: AdvanceRequest) -> Result<AdvanceResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let on = format!("{}:{}", req.event, req.target);
        if !content::valid_on(&on) {
            return Err(Status::invalid_argument(
                "event must be lowercase letters, digits or '_' and target an id (lowercase letters, digits or '-')",
            ));
        }
        let amount = match req.amount {
            0 => 1,
            n if n <= content_max_amount() => n,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "amount must be 0 to {}",
                    content_max_amount()
                )));
            }
        };
        let event = caller_key(&ctx);
        let mut advanced: Vec<QuestProgress> = Vec::new();
        for (quest, objective) in self.quests.listening(&on) {
            if let Bumped::Moved(progress) = self
                .bump(
                    &player,
                    quest,
                    &objective.id,
                    objective.target_count,
                    amount,
                    event
                        .as_ref()
                        .map(|k| format!("{k}:{}", objective.id))
                        .as_deref(),
                )
                .await?
            {
                // A quest with two objectives on one event appears once, as it is last.
                advanced.retain(|p| p.quest_id != progress.quest_id);
                advanced.push(progress);
            }
        }
        Ok(AdvanceResponse { advanced })
    }

    async fn complete(
        &self,
        ctx: Context,
        req: CompleteRequest,
    ) -> Result<CompleteResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let id = &q.definition.id;
        let reward = q.definition.reward.clone().unwrap_or_default();
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut record, version)) = self.read(&player, id).await? else {
                return Err(Status::failed_precondition(format!(
                    "quest {id} was never accepted"
                )));
            };
            match record.status {
                // A repeat (or a retry after a crash past the record): the same answer, and the
                // event, which is published once whatever the number of attempts.
                Stage::Completed => {
                    let granted = self
                        .grant_experience(&player, id, record.experience)
                        .await?;
                    self.announce_once(&ctx, &player, q, record.clone(), version, granted.0)
                        .await?;
                    return Ok(self.completed(&ctx, &player, q, &record, granted).await);
                }
                Stage::Abandoned => {
                    return Err(Status::failed_precondition(format!(
                        "quest {id} was abandoned; accept it again first"
                    )));
                }
                Stage::Active => {}
            }
            if let Some(o) = q
                .definition
                .objectives
                .iter()
                .find(|o| record.objectives.get(&o.id).copied().unwrap_or(0) < o.target_count)
            {
                return Err(Status::failed_precondition(format!(
                    "objective {:?} of quest {id} is at {} of {}",
                    o.id,
                    record.objectives.get(&o.id).copied().unwrap_or(0),
                    o.target_count
                )));
            }
            self.pay_reward(&ctx, &player, q, &reward).await?;
            let granted = self
                .grant_experience(&player, id, reward.experience)
                .await?;
            record.status = Stage::Completed;
            record.completed_game_ms = self.game_now(&ctx).await?;
            record.completed_wall_ms = wall_ms();
            record.experience = reward.experience;
            record.currency = reward.currency;
            record.items.clone_from(&reward.items);
            if let Some(written) = self.write(&player, id, &record, version).await? {
                self.announce_once(&ctx, &player, q, record.clone(), written, granted.0)
                    .await?;
                return Ok(self.completed(&ctx, &player, q, &record, granted).await);
            }
            // Changed meanwhile (progress, or a parallel Complete): read again. The payment and
            // the grant are once per quest, so doing them again adds nothing.
        }
        Err(Status::aborted(format!("quest {id} kept changing; retry")))
    }

    async fn abandon(&self, ctx: Context, req: AbandonRequest) -> Result<AbandonResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let id = &q.definition.id;
        let at = self.game_now(&ctx).await?;
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut record, version)) = self.read(&player, id).await? else {
                return Err(Status::failed_precondition(format!(
                    "quest {id} was never accepted"
                )));
            };
            if record.status != Stage::Active {
                return Err(Status::failed_precondition(format!(
                    "quest {id} is not active"
                )));
            }
            // A workflow undoing its own acceptance: only that one, never the player's own.
            if !req.accepted_with_key.is_empty() {
                let probe = Context {
                    idempotency_key: Some(req.accepted_with_key.clone()),
                    ..ctx.clone()
                };
                if caller_key(&probe).as_deref() != Some(record.accepted_key.as_str()) {
                    return Err(Status::failed_precondition(format!(
                        "quest {id} was not accepted with that key; nothing to undo"
                    )));
                }
            }
            record.status = Stage::Abandoned;
            record.abandoned_game_ms = at;
            record.abandoned_wall_ms = wall_ms();
            if self.write(&player, id, &record, version).await?.is_some() {
                return Ok(AbandonResponse {
                    progress: Some(self.as_read(&ctx, &player, record.progress(q)).await),
                });
            }
        }
        Err(Status::aborted(format!("quest {id} kept changing; retry")))
    }

    async fn get_log(&self, ctx: Context, req: GetLogRequest) -> Result<GetLogResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let records = self.records(&player).await?;
        // A record of a quest the content no longer has cannot be drawn: left out.
        let mut quests: Vec<(i64, QuestProgress)> = records
            .iter()
            .filter_map(|(id, r)| Some((r.accepted_game_ms, r.progress(self.quests.get(id)?))))
            .collect();
        // Most recently accepted first.
        quests.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.quest_id.cmp(&b.1.quest_id)));
        let reader = self.reader(&ctx, &player).await;
        let mut quests: Vec<QuestProgress> = quests.into_iter().map(|(_, p)| p).collect();
        for q in quests.iter_mut().filter_map(|p| p.quest.as_mut()) {
            localized::localize(q, &reader);
        }
        Ok(GetLogResponse {
            quests,
            locale: reader.locale().to_owned(),
        })
    }

    async fn get_quest(
        &self,
        ctx: Context,
        req: GetQuestRequest,
    ) -> Result<GetQuestResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let records = self.records(&player).await?;
        let level = self.level(&player).await?;
        let locks = availability::locks(q, &records, level);
        let mut progress = match records.get(&q.definition.id) {
            Some(record) => record.progress(q),
            None => QuestProgress {
                status: QuestStatus::NotAccepted.into(),
                ..Record::default().progress(q)
            },
        };
        let reader = self.reader(&ctx, &player).await;
        if let Some(def) = progress.quest.as_mut() {
            localized::localize(def, &reader);
        }
        Ok(GetQuestResponse {
            progress: Some(progress),
            available: locks.is_empty(),
            locks,
            locale: reader.locale().to_owned(),
        })
    }

    async fn get_progression(
        &self,
        ctx: Context,
        req: GetProgressionRequest,
    ) -> Result<GetProgressionResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        Ok(GetProgressionResponse {
            progression: Some(self.progression_of(&player).await?),
        })
    }
}

impl QuestService {
    /// The reader of `player`'s quest text: their language, read once for the call.
    async fn reader(&self, ctx: &Context, player: &str) -> crate::kit::l10n::Reader<'_> {
        self.texts
            .reader_for(ctx, &self.settings, Some(player))
            .await
    }

    /// Pays a completed quest's reward, keyed by (player, quest) so it is paid once. The one
    /// place the reward meets payment.
    async fn pay_reward(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        reward: &Reward,
    ) -> Result<(), Status> {
        // Money and items in one idempotent step: a retry pays once and gives one of each.
        let mut items: Vec<ItemGrant> = Vec::new();
        for sku in &reward.items {
            match items.iter_mut().find(|i| &i.sku == sku) {
                Some(i) => i.quantity += 1,
                None => items.push(ItemGrant {
                    sku: sku.clone(),
                    quantity: 1,
                }),
            }
        }
        if reward.currency > 0 || !items.is_empty() {
            self.payment
                .grant(
                    ctx.outgoing()
                        .idempotent(format!("quest-reward:{player}:{}", q.definition.id)),
                    GrantRequest {
                        player_id: player.to_owned(),
                        currency: reward.currency,
                        items,
                        reason: format!("Quest reward: {}", q.definition.title),
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Complete's answer for a completed `record`: the same on every repeat but for the
    /// progression, which is the player's now.
    async fn completed(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        record: &Record,
        (grant, experience): (Grant, u64),
    ) -> CompleteResponse {
        CompleteResponse {
            progress: Some(self.as_read(ctx, player, record.progress(q)).await),
            reward: Some(record.granted()),
            progression: Some(progression(&self.quests.levels, experience)),
            levels_gained: grant.levels_gained(),
        }
    }
}

/// The wall clock, Unix ms, as the `...AtMs` fields say it.
fn wall_ms() -> i64 {
    i64::try_from(crate::kit::clock::now_ms()).unwrap_or(i64::MAX)
}

/// Most progress one call may report.
const fn content_max_amount() -> u32 {
    1000
}

#[cfg(test)]
mod tests;
