//! The quest journal: each player's quest records in the store, their stages and progress, and the
//! rewards paid once when a quest completes.

use proto::aicore::quest::v1::{QuestCompleted, Reward};

use proto::aicore::settings::v1::SettingsServiceClient;

use super::*;
use crate::kit::event_log::typed_event;
use crate::kit::l10n::Texts;

/// Compare-and-set attempts before a busy record is reported as `aborted`.
pub(super) const MAX_ATTEMPTS: usize = 64;

pub(super) fn record_key(player: &str, quest: &str) -> String {
    format!("quest.p.{player}.{quest}")
}

pub(super) fn player_prefix(player: &str) -> String {
    format!("quest.p.{player}.")
}

/// What the store keeps for one player and quest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) status: Stage,
    /// Objective id -> count reached.
    pub(super) objectives: BTreeMap<String, u32>,
    /// Game times (ms since the game epoch).
    #[serde(rename = "accepted_at_ms")]
    pub(super) accepted_game_ms: i64,
    #[serde(default, rename = "completed_at_ms")]
    pub(super) completed_game_ms: i64,
    #[serde(default, rename = "abandoned_at_ms")]
    pub(super) abandoned_game_ms: i64,
    /// Wall-clock times (Unix ms); 0 in records written before they were kept.
    #[serde(default)]
    pub(super) accepted_wall_ms: i64,
    #[serde(default)]
    pub(super) completed_wall_ms: i64,
    #[serde(default)]
    pub(super) abandoned_wall_ms: i64,
    /// What completing it granted.
    #[serde(default)]
    pub(super) experience: u32,
    #[serde(default)]
    pub(super) currency: i64,
    #[serde(default)]
    pub(super) items: Vec<String>,
    /// Whether `quest.completed` went out: it is published on the change, once.
    #[serde(default)]
    pub(super) announced: bool,
    /// The Idempotency-Key (hashed with its caller) this acceptance was made with: a retry of it
    /// is answered, not refused, and a workflow can undo exactly its own acceptance.
    #[serde(default)]
    pub(super) accepted_key: String,
    /// The last game events (their keys, hashed with the caller) that advanced it: one event
    /// advances it once, even when a retry follows a partial failure.
    #[serde(default)]
    pub(super) applied: Vec<String>,
}

/// Events remembered per quest record.
pub(super) const APPLIED_KEPT: usize = 64;

/// An Idempotency-Key hashed with who sent it: one caller's key never matches another's.
pub(super) fn caller_key(ctx: &Context) -> Option<String> {
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
pub(super) enum Stage {
    #[default]
    Active,
    Completed,
    Abandoned,
}

impl Record {
    /// The record as clients see it: with the quest's definition inline, each objective carrying
    /// the player's count, in the order players do them.
    pub(super) fn progress(&self, q: &QuestDef) -> QuestProgress {
        let mut quest = q.definition.clone();
        for o in &mut quest.objectives {
            o.count = self.objectives.get(&o.id).copied().unwrap_or(0);
        }
        QuestProgress {
            quest_id: quest.id.clone(),
            status: match self.status {
                Stage::Active => QuestStatus::Active,
                Stage::Completed => QuestStatus::Completed,
                Stage::Abandoned => QuestStatus::Abandoned,
            } as i32,
            objectives: self.objectives.clone().into_iter().collect(),
            accepted_game_time_ms: self.accepted_game_ms,
            completed_game_time_ms: self.completed_game_ms,
            abandoned_game_time_ms: self.abandoned_game_ms,
            accepted_at_ms: self.accepted_wall_ms,
            completed_at_ms: self.completed_wall_ms,
            abandoned_at_ms: self.abandoned_wall_ms,
            granted: (self.status == Stage::Completed).then(|| self.granted()),
            quest: Some(quest),
        }
    }

    pub(super) fn granted(&self) -> Reward {
        Reward {
            currency: self.currency,
            items: self.items.clone(),
            experience: self.experience,
        }
    }
}

/// What adding to one objective did.
pub(super) enum Bumped {
    Moved(QuestProgress),
    AtTarget(QuestProgress),
    NotAccepted,
    NotActive,
}

/// The service.
pub struct QuestService {
    pub(super) store: Arc<dyn Store>,
    pub(super) quests: Arc<Quests>,
    pub(super) payment: PaymentServiceClient<Caller>,
    pub(super) events: EventBusServiceClient<Caller>,
    pub(super) time: TimeServiceClient<Caller>,
    /// Reads the player's language for the text served.
    pub(super) settings: SettingsServiceClient<Caller>,
    /// The quests' text in other languages.
    pub(super) texts: Arc<Texts>,
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
            time: TimeServiceClient(caller.clone()),
            settings: SettingsServiceClient(caller),
            texts: Arc::default(),
        }
    }

    /// Serving the quests' text in each player's language, from `texts`.
    pub fn with_texts(mut self, texts: Arc<Texts>) -> Self {
        self.texts = texts;
        self
    }

    pub(super) fn quest(&self, id: &str) -> Result<&QuestDef, Status> {
        self.quests
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no quest {id:?}")))
    }

    /// Adds `amount` to one objective of an active quest, up to `target`, by compare-and-set.
    pub(super) async fn bump(
        &self,
        player: &str,
        q: &QuestDef,
        objective: &str,
        target: u32,
        amount: u32,
        event: Option<&str>,
    ) -> Result<Bumped, Status> {
        let id = &q.definition.id;
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
                    return Ok(Bumped::Moved(record.progress(q)));
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
                return Ok(Bumped::AtTarget(record.progress(q)));
            }
            *count = next;
            if self.write(player, id, &record, version).await?.is_some() {
                return Ok(Bumped::Moved(record.progress(q)));
            }
            if attempt > 4 {
                tokio::task::yield_now().await;
            }
        }
        Err(Status::aborted(format!(
            "quest {id} progress kept changing; retry"
        )))
    }

    pub(super) async fn read(
        &self,
        player: &str,
        quest: &str,
    ) -> Result<Option<(Record, u64)>, Status> {
        match self.store.get(&record_key(player, quest)).await? {
            Some(v) => {
                let record = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("quest record: {e}")))?;
                Ok(Some((record, v.version)))
            }
            None => Ok(None),
        }
    }

    pub(super) async fn write(
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

    /// Publishes `quest.completed`, then `player.leveled` if the grant crossed a level, if they
    /// have not gone out yet, then records that they have. A crash in between publishes again
    /// with the same keys (the bus's idempotency record answers).
    pub(super) async fn announce_once(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        mut record: Record,
        version: u64,
        grant: Grant,
    ) -> Result<(), Status> {
        if record.announced {
            return Ok(());
        }
        self.announce(ctx, player, q, &record, grant).await?;
        self.announce_level(ctx, player, &q.definition.id, grant)
            .await?;
        record.announced = true;
        // Lost to a concurrent change: the next Complete sees it unannounced and tries again,
        // keyed the same.
        let _ = self
            .write(player, &q.definition.id, &record, version)
            .await?;
        Ok(())
    }

    /// Every record of `player`, by quest id.
    pub(super) async fn records(&self, player: &str) -> Result<BTreeMap<String, Record>, Status> {
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

    pub(super) async fn game_now(&self, ctx: &Context) -> Result<i64, Status> {
        Ok(self
            .time
            .now(ctx.outgoing(), NowRequest {})
            .await?
            .game_time_ms)
    }

    /// Publishes `quest.completed` on the player's topic, once per (player, quest), saying the
    /// level the player reached with it and how many levels it gained.
    pub(super) async fn announce(
        &self,
        ctx: &Context,
        player: &str,
        q: &QuestDef,
        record: &Record,
        grant: Grant,
    ) -> Result<(), Status> {
        // The level fields come from the grant, fixed when it was made: a repeat says the same.
        // The reward is Complete's own `Reward`: `"currency":"250"` in both.
        // The player reads the title on their own topic: in their language, as the log shows it.
        let reader = self.reader(ctx, player).await;
        let mut title = q.definition.title.clone();
        reader.put(&format!("quest-{}-title", q.definition.id), &mut title);
        let event = QuestCompleted {
            quest_id: q.definition.id.clone(),
            title,
            locale: reader.locale().to_owned(),
            reward: Some(Reward {
                currency: record.currency,
                items: record.items.clone(),
                experience: record.experience,
            }),
            completed_game_time_ms: record.completed_game_ms,
            completed_at_ms: record.completed_wall_ms,
            level: grant.to_level,
            levels_gained: grant.levels_gained(),
        };
        self.events
            .publish(
                ctx.outgoing()
                    .idempotent(format!("quest-completed:{player}:{}", q.definition.id)),
                typed_event(format!("player.{player}"), &event)?,
            )
            .await
            .map(|_| ())
    }
}
