//! `aicore.quest.v1.QuestService`: quest definitions (shipped as data, see [`content`]) and each
//! player's progress.
//!
//! A player's progress on one quest is one record, `quest.p.<player>.<quest>`, changed only by
//! compare-and-set, so parallel `Progress` calls add up exactly. A player's level derives from
//! the experience their completed quests granted (kept in those records, so editing a quest's
//! reward later changes nobody's past). `Complete` pays through `payment.Credit` as a call
//! between services, keyed by (player, quest): a retry, or a retry after the process died
//! between the credit and the record, finds the payment already made and credits nothing more.
//! It then publishes `quest.completed` on the player's topic, keyed the same way, so once.

pub mod content;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::events::v1::{EventBusServiceClient, PublishRequest};
use proto::aicore::payment::v1::{CreditRequest, PaymentServiceClient};
use proto::aicore::quest::v1::{
    AbandonRequest, AbandonResponse, AcceptRequest, AcceptResponse, AdvanceRequest,
    AdvanceResponse, CompleteRequest, CompleteResponse, GetLogRequest, GetLogResponse,
    ListAvailableRequest, ListAvailableResponse, ProgressRequest, ProgressResponse, QuestProgress,
    QuestServiceHandler, QuestStatus, Reward,
};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use serde::{Deserialize, Serialize};

pub use content::{QuestDef, Quests};

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Compare-and-set attempts before a busy record is reported as `aborted`.
const MAX_ATTEMPTS: usize = 64;

fn record_key(player: &str, quest: &str) -> String {
    format!("quest.p.{player}.{quest}")
}

fn player_prefix(player: &str) -> String {
    format!("quest.p.{player}.")
}

/// What the store keeps for one player and quest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    status: Stage,
    /// Objective id -> count reached.
    objectives: BTreeMap<String, u32>,
    /// Game times (ms since the game epoch).
    accepted_at_ms: i64,
    #[serde(default)]
    completed_at_ms: i64,
    #[serde(default)]
    abandoned_at_ms: i64,
    /// What completing it granted.
    #[serde(default)]
    experience: u32,
    #[serde(default)]
    currency: i64,
    #[serde(default)]
    items: Vec<String>,
    /// Whether `quest.completed` went out: it is published on the change, once.
    #[serde(default)]
    announced: bool,
    /// The Idempotency-Key (hashed with its caller) this acceptance was made with: a retry of it
    /// is answered, not refused, and a workflow can undo exactly its own acceptance.
    #[serde(default)]
    accepted_key: String,
    /// The last game events (their keys, hashed with the caller) that advanced it: one event
    /// advances it once, even when a retry follows a partial failure.
    #[serde(default)]
    applied: Vec<String>,
}

/// Events remembered per quest record.
const APPLIED_KEPT: usize = 64;

/// An Idempotency-Key hashed with who sent it: one caller's key never matches another's.
fn caller_key(ctx: &Context) -> Option<String> {
    use sha2::Digest as _;
    let key = ctx.idempotency_key.as_deref()?;
    let who = ctx
        .principal
        .as_ref()
        .map(crate::kit::context::Principal::describe)
        .unwrap_or_default();
    Some(format!(
        "{:x}",
        sha2::Sha256::digest(format!("{who}\n{key}").as_bytes())
    ))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Stage {
    #[default]
    Active,
    Completed,
    Abandoned,
}

impl Record {
    fn progress(&self, quest: &str) -> QuestProgress {
        QuestProgress {
            quest_id: quest.to_owned(),
            status: match self.status {
                Stage::Active => QuestStatus::Active,
                Stage::Completed => QuestStatus::Completed,
                Stage::Abandoned => QuestStatus::Abandoned,
            } as i32,
            objectives: self.objectives.clone().into_iter().collect(),
            accepted_at_ms: self.accepted_at_ms,
            completed_at_ms: self.completed_at_ms,
        }
    }

    fn granted(&self) -> Reward {
        Reward {
            currency: self.currency,
            items: self.items.clone(),
            experience: self.experience,
        }
    }
}

/// What adding to one objective did.
enum Bumped {
    Moved(QuestProgress),
    AtTarget(QuestProgress),
    NotAccepted,
    NotActive,
}

/// The service.
pub struct QuestService {
    store: Arc<dyn Store>,
    quests: Arc<Quests>,
    payment: PaymentServiceClient<Caller>,
    events: EventBusServiceClient<Caller>,
    time: TimeServiceClient<Caller>,
}

impl QuestService {
    /// The service over `store`, calling payment, events and time through `caller` (the quest
    /// service's).
    pub fn new(store: Arc<dyn Store>, quests: Arc<Quests>, caller: Caller) -> Self {
        QuestService {
            store,
            quests,
            payment: PaymentServiceClient(caller.clone()),
            events: EventBusServiceClient(caller.clone()),
            time: TimeServiceClient(caller),
        }
    }

    fn quest(&self, id: &str) -> Result<&QuestDef, Status> {
        self.quests
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no quest {id:?}")))
    }

    /// Adds `amount` to one objective of an active quest, up to `target`, by compare-and-set.
    async fn bump(
        &self,
        player: &str,
        id: &str,
        objective: &str,
        target: u32,
        amount: u32,
        event: Option<&str>,
    ) -> Result<Bumped, Status> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some((mut record, version)) = self.read(player, id).await? else {
                return Ok(Bumped::NotAccepted);
            };
            if record.status != Stage::Active {
                return Ok(Bumped::NotActive);
            }
            if let Some(event) = event {
                if record.applied.iter().any(|k| k == event) {
                    // This event advanced it already (a retry after a partial failure).
                    return Ok(Bumped::Moved(record.progress(id)));
                }
                record.applied.push(event.to_owned());
                if record.applied.len() > APPLIED_KEPT {
                    record.applied.remove(0);
                }
            }
            let count = record.objectives.entry(objective.to_owned()).or_insert(0);
            let next = count.saturating_add(amount).min(target);
            if next == *count {
                // Already at its target: nothing to write.
                return Ok(Bumped::AtTarget(record.progress(id)));
            }
            *count = next;
            if self.write(player, id, &record, version).await?.is_some() {
                return Ok(Bumped::Moved(record.progress(id)));
            }
            if attempt > 4 {
                tokio::task::yield_now().await;
            }
        }
        Err(Status::aborted(format!(
            "quest {id} progress kept changing; retry"
        )))
    }

    async fn read(&self, player: &str, quest: &str) -> Result<Option<(Record, u64)>, Status> {
        match self.store.get(&record_key(player, quest)).await? {
            Some(v) => {
                let record = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("quest record: {e}")))?;
                Ok(Some((record, v.version)))
            }
            None => Ok(None),
        }
    }

    async fn write(
        &self,
        player: &str,
        quest: &str,
        record: &Record,
        expected: u64,
    ) -> Result<Option<u64>, Status> {
        let bytes = serde_json::to_vec(record).map_err(|e| Status::internal(e.to_string()))?;
        match self
            .store
            .put(
                &record_key(player, quest),
                Bytes::from(bytes),
                Some(expected),
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Publishes `quest.completed` if it has not gone out yet, then records that it has. A crash
    /// in between publishes again with the same key (the bus's idempotency record answers).
    async fn announce_once(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        mut record: Record,
        version: u64,
    ) -> Result<(), Status> {
        if record.announced {
            return Ok(());
        }
        self.announce(ctx, player, q, &record).await?;
        record.announced = true;
        // Lost to a concurrent change: the next Complete sees it unannounced and tries again,
        // keyed the same.
        let _ = self
            .write(player, &q.definition.id, &record, version)
            .await?;
        Ok(())
    }

    /// Every record of `player`, by quest id.
    async fn records(&self, player: &str) -> Result<BTreeMap<String, Record>, Status> {
        let prefix = player_prefix(player);
        let mut out = BTreeMap::new();
        let mut after = None;
        loop {
            // A page the store reads inline: a player has a record per quest they took.
            let page = self.store.list(&prefix, after.as_deref(), 64).await?;
            for (k, v) in &page.entries {
                let record: Record = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("quest record: {e}")))?;
                out.insert(k[prefix.len()..].to_owned(), record);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    fn level(&self, records: &BTreeMap<String, Record>) -> u32 {
        let xp = records
            .values()
            .filter(|r| r.status == Stage::Completed)
            .map(|r| u64::from(r.experience))
            .sum();
        self.quests.level_for(xp)
    }

    /// Why `quest` cannot be accepted now, if it cannot.
    fn unavailable(&self, q: &QuestDef, records: &BTreeMap<String, Record>) -> Option<Status> {
        let id = &q.definition.id;
        match records.get(id).map(|r| r.status) {
            Some(Stage::Active) => {
                return Some(Status::failed_precondition(format!(
                    "quest {id} is already active"
                )));
            }
            Some(Stage::Completed) => {
                return Some(Status::failed_precondition(format!(
                    "quest {id} is already completed"
                )));
            }
            Some(Stage::Abandoned) | None => {}
        }
        if let Some(missing) = q
            .definition
            .prerequisites
            .iter()
            .find(|p| records.get(*p).map(|r| r.status) != Some(Stage::Completed))
        {
            return Some(Status::failed_precondition(format!(
                "quest {id} needs quest {missing} completed first"
            )));
        }
        let level = self.level(records);
        if level < q.definition.min_level {
            return Some(Status::failed_precondition(format!(
                "quest {id} needs level {}; the player is level {level}",
                q.definition.min_level
            )));
        }
        None
    }

    async fn game_now(&self, ctx: &Context) -> Result<i64, Status> {
        Ok(self
            .time
            .now(ctx.outgoing(), NowRequest {})
            .await?
            .game_time_ms)
    }

    /// Publishes `quest.completed` on the player's topic, once per (player, quest).
    async fn announce(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        record: &Record,
    ) -> Result<(), Status> {
        let payload = serde_json::json!({
            "questId": q.definition.id,
            "title": q.definition.title,
            "currency": record.currency,
            "items": record.items,
            "experience": record.experience,
            "completedAtMs": record.completed_at_ms,
        });
        let payload = serde_json::from_value(payload)
            .map_err(|e| Status::internal(format!("event payload: {e}")))?;
        self.events
            .publish(
                ctx.outgoing()
                    .idempotent(format!("quest-completed:{player}:{}", q.definition.id)),
                PublishRequest {
                    topic: format!("player.{player}"),
                    r#type: "quest.completed".into(),
                    payload: Some(payload),
                },
            )
            .await
            .map(|_| ())
    }
}

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
        Ok(ListAvailableResponse {
            quests: self
                .quests
                .list
                .iter()
                .filter(|q| self.unavailable(q, &records).is_none())
                .map(|q| q.definition.clone())
                .collect(),
        })
    }

    async fn accept(&self, ctx: Context, req: AcceptRequest) -> Result<AcceptResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let q = self.quest(&req.quest_id)?;
        let id = &q.definition.id;
        let at = self.game_now(&ctx).await?;
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
                    progress: Some(record.progress(id)),
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
            if let Some(why) = self.unavailable(q, &records) {
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
                accepted_at_ms: at,
                accepted_key: caller_key(&ctx).unwrap_or_default(),
                ..Record::default()
            };
            if self.write(&player, id, &record, version).await?.is_some() {
                return Ok(AcceptResponse {
                    progress: Some(record.progress(id)),
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
                id,
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
            let id = &quest.definition.id;
            if let Bumped::Moved(progress) = self
                .bump(
                    &player,
                    id,
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
                    self.announce_once(&ctx, &player, q, record.clone(), version)
                        .await?;
                    return Ok(CompleteResponse {
                        progress: Some(record.progress(id)),
                        reward: Some(record.granted()),
                    });
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
            if reward.currency > 0 {
                self.payment
                    .credit(
                        ctx.outgoing()
                            .idempotent(format!("quest-reward:{player}:{id}")),
                        CreditRequest {
                            player_id: player.clone(),
                            amount: reward.currency,
                            reason: format!("Quest reward: {}", q.definition.title),
                        },
                    )
                    .await?;
            }
            record.status = Stage::Completed;
            record.completed_at_ms = self.game_now(&ctx).await?;
            record.experience = reward.experience;
            record.currency = reward.currency;
            record.items.clone_from(&reward.items);
            if let Some(written) = self.write(&player, id, &record, version).await? {
                self.announce_once(&ctx, &player, q, record.clone(), written)
                    .await?;
                return Ok(CompleteResponse {
                    progress: Some(record.progress(id)),
                    reward: Some(record.granted()),
                });
            }
            // Changed meanwhile (progress, or a parallel Complete): read again. The credit is
            // keyed, so doing it again pays nothing more.
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
            record.abandoned_at_ms = at;
            if self.write(&player, id, &record, version).await?.is_some() {
                return Ok(AbandonResponse {
                    progress: Some(record.progress(id)),
                });
            }
        }
        Err(Status::aborted(format!("quest {id} kept changing; retry")))
    }

    async fn get_log(&self, ctx: Context, req: GetLogRequest) -> Result<GetLogResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let records = self.records(&player).await?;
        let mut quests: Vec<(i64, QuestProgress)> = records
            .iter()
            .map(|(id, r)| (r.accepted_at_ms, r.progress(id)))
            .collect();
        // Most recently accepted first.
        quests.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.quest_id.cmp(&b.1.quest_id)));
        Ok(GetLogResponse {
            quests: quests.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

/// Most progress one call may report.
const fn content_max_amount() -> u32 {
    1000
}

#[cfg(test)]
mod tests;
