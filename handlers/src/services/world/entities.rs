//! Entities in the store: keyed by region and id, indexed by cell, counted in stripes, with a
//! journal that lets a change interrupted half-way be finished.

use proto::aicore::events::v1::PublishRequest;
use proto::aicore::world::v1::EntityRemoved;

use super::*;
use crate::kit::event_log::typed_event;

/// Most attributes on one entity.
pub const MAX_ATTRIBUTES: usize = 32;
pub(super) const MAX_ATTR_KEY: usize = 64;
pub(super) const MAX_ATTR_VALUE: usize = 256;
/// A journal older than this belongs to a change that died; it is finished by whoever finds it.
pub const STALE_JOURNAL: Duration = Duration::from_secs(10);
pub(super) const PAGE: usize = 500;
/// Journals are few (changes in flight); a page this small is read inline.
pub(super) const JOURNAL_PAGE: usize = 64;

pub(super) fn entity_key(region: &str, id: &str) -> String {
    format!("world.ent.{region}.{id}")
}
pub(super) fn journal_key(region: &str, id: &str) -> String {
    format!("world.lock.{region}.{id}")
}
/// The entity count is striped over this many keys, so concurrent creates in one region do not
/// all race on one key.
pub(super) const COUNT_STRIPES: u64 = 16;

pub(super) fn count_prefix(region: &str) -> String {
    format!("world.count.{region}.")
}

pub(super) fn count_key(region: &str, id: &str) -> String {
    let stripe = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) % COUNT_STRIPES;
    format!("world.count.{region}.{stripe:02}")
}

/// What a change is about to do, so that anyone can finish it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Journal {
    /// The entity record's version before the change (0: absent).
    pub(super) base_version: u64,
    /// The cell its copy was in before, if any.
    pub(super) from_cell: Option<String>,
    /// When the change began (Unix ms).
    pub(super) at_ms: u64,
}

/// The service.
pub struct WorldService {
    pub(super) store: Arc<dyn Store>,
    pub(super) regions: Arc<Regions>,
    pub(super) events: EventBusServiceClient<Caller>,
    pub(super) cells: CellCache,
    /// Seals page tokens (its secret is in the store, loaded on the first query that pages).
    pub(super) sealer: tokio::sync::OnceCell<crate::kit::sealed::Sealer>,
    /// Entities placed from content (see `placed`).
    pub(super) placed: Arc<super::placed::Placed>,
    /// Reads the player's language for the region text served.
    pub(super) settings: proto::aicore::settings::v1::SettingsServiceClient<Caller>,
    /// The regions' text in other languages.
    pub(super) texts: Arc<crate::kit::l10n::Texts>,
}

impl WorldService {
    /// The service over `store`, publishing through `caller` (the world service's).
    pub fn new(store: Arc<dyn Store>, regions: Arc<Regions>, caller: Caller) -> Self {
        WorldService {
            store,
            regions,
            events: EventBusServiceClient(caller.clone()),
            cells: CellCache::default(),
            sealer: tokio::sync::OnceCell::new(),
            placed: Arc::default(),
            settings: proto::aicore::settings::v1::SettingsServiceClient(caller),
            texts: Arc::default(),
        }
    }

    /// Serving the regions' text in each player's language, from `texts`.
    pub fn with_texts(mut self, texts: Arc<crate::kit::l10n::Texts>) -> Self {
        self.texts = texts;
        self
    }

    /// `region` as the caller's player reads it: name and description in their language.
    pub(super) fn localized(
        region: &proto::aicore::world::v1::Region,
        reader: &crate::kit::l10n::Reader<'_>,
    ) -> proto::aicore::world::v1::Region {
        let mut r = region.clone();
        reader.put(&format!("region-{}-name", r.id), &mut r.name);
        reader.put(&format!("region-{}-description", r.id), &mut r.description);
        r
    }

    pub(super) fn region(&self, id: &str) -> Result<&RegionDef, Status> {
        self.regions
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no region {id:?}")))
    }

    /// The grid cell of a position (x and z), relative to the region's corner.
    pub(super) fn cell_of(&self, region: &RegionDef, p: [f64; 3]) -> (u32, u32) {
        let c = |v: f64, min: f64| ((v - min) / self.regions.cell_size).floor().max(0.0) as u32;
        (c(p[0], region.min[0]), c(p[2], region.min[2]))
    }

    pub(super) fn cell_name(&self, region: &RegionDef, p: [f64; 3]) -> String {
        let (x, z) = self.cell_of(region, p);
        format!("{x}_{z}")
    }

    /// Finishes unfinished changes now and then every `every`, until `stop`: a task the server
    /// owns.
    pub async fn run_janitor(self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        // Only journals past STALE_JOURNAL: a fresh one may be another replica's live change.
        // Queries are exact meanwhile; only that entity's next change waits.
        loop {
            match self.repair(STALE_JOURNAL).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(finished = n, "finished world changes left unfinished"),
                Err(e) => tracing::warn!(error = %e, "world janitor pass failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Finishes every change a process left unfinished (at start, and from the janitor).
    pub async fn repair(&self, older_than: Duration) -> Result<usize, Status> {
        let mut done = 0;
        let mut after = None;
        loop {
            let page = self
                .store
                .list("world.lock.", after.as_deref(), PAGE)
                .await?;
            for (key, v) in &page.entries {
                let Some((region, id)) = key
                    .strip_prefix("world.lock.")
                    .and_then(|r| r.split_once('.'))
                else {
                    continue;
                };
                let journal: Journal = match serde_json::from_slice(&v.value) {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::error!(key, error = %e, "unreadable world journal");
                        continue;
                    }
                };
                if now_ms().saturating_sub(journal.at_ms) < older_than.as_millis() as u64 {
                    continue;
                }
                if self.finish(region, id, &journal, v.version).await.is_ok() {
                    done += 1;
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(done),
            }
        }
    }

    /// Makes the cells agree with the record, publishes the event if the change committed, and
    /// removes the journal (at `journal_version`).
    pub(super) async fn finish(
        &self,
        region_id: &str,
        id: &str,
        journal: &Journal,
        journal_version: u64,
    ) -> Result<(), Status> {
        let region = self.region(region_id)?;
        let record = self.store.get(&entity_key(region_id, id)).await?;
        match record {
            Some(v) => {
                let mut entity = Entity::decode(v.value.as_ref())
                    .map_err(|e| Status::internal(format!("entity record: {e}")))?;
                entity.version = v.version;
                let cell = self.cell_name(region, position(&entity));
                self.put_copy(region_id, &cell, &entity).await?;
                if let Some(from) = journal.from_cell.as_deref().filter(|f| *f != cell) {
                    self.delete_copy(region_id, from, id).await?;
                }
                if v.version != journal.base_version {
                    self.publish_upsert(&Context::default(), &entity).await?;
                }
            }
            None => {
                if let Some(from) = &journal.from_cell {
                    self.delete_copy(region_id, from, id).await?;
                }
                if journal.base_version != 0 {
                    self.publish_removal(&Context::default(), region_id, id, journal.base_version)
                        .await?;
                }
            }
        }
        match self
            .store
            .delete(&journal_key(region_id, id), Some(journal_version))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn publish_upsert(
        &self,
        ctx: &Context,
        entity: &Entity,
    ) -> Result<(), Status> {
        self.publish(
            ctx,
            typed_event(format!("world.{}", entity.region_id), entity)?,
            format!(
                "world:{}:{}:{}",
                entity.region_id, entity.id, entity.version
            ),
        )
        .await
    }

    pub(super) async fn publish_removal(
        &self,
        ctx: &Context,
        region: &str,
        id: &str,
        version: u64,
    ) -> Result<(), Status> {
        let event = EntityRemoved {
            region_id: region.to_owned(),
            id: id.to_owned(),
            version,
        };
        self.publish(
            ctx,
            typed_event(format!("world.{region}"), &event)?,
            format!("world:{region}:{id}:removed:{version}"),
        )
        .await
    }

    async fn publish(
        &self,
        ctx: &Context,
        request: PublishRequest,
        key: String,
    ) -> Result<(), Status> {
        self.events
            .publish(ctx.outgoing().idempotent(key), request)
            .await
            .map(|_| ())
    }

    /// Takes the entity's journal for a change from `base_version`. A journal left by a change
    /// that died is finished first; one in use means a concurrent change: `aborted`.
    pub(super) async fn begin(
        &self,
        region: &str,
        id: &str,
        base_version: u64,
        from_cell: Option<String>,
    ) -> Result<u64, Status> {
        let key = journal_key(region, id);
        let journal = Journal {
            base_version,
            from_cell,
            at_ms: now_ms(),
        };
        let bytes =
            Bytes::from(serde_json::to_vec(&journal).map_err(|e| Status::internal(e.to_string()))?);
        for _ in 0..2 {
            match self.store.put(&key, bytes.clone(), Some(0)).await {
                Ok(v) => return Ok(v),
                Err(StoreError::Conflict { .. }) => {
                    let Some(held) = self.store.get(&key).await? else {
                        continue;
                    };
                    let old: Journal = serde_json::from_slice(&held.value)
                        .map_err(|e| Status::internal(format!("world journal: {e}")))?;
                    if now_ms().saturating_sub(old.at_ms) < STALE_JOURNAL.as_millis() as u64 {
                        return Err(Status::aborted(format!(
                            "entity {id} is being changed by another call; retry"
                        )));
                    }
                    self.finish(region, id, &old, held.version).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted(format!(
            "entity {id} is being changed by another call; retry"
        )))
    }

    pub(super) async fn end(&self, region: &str, id: &str, journal_version: u64) {
        if let Err(e) = self
            .store
            .delete(&journal_key(region, id), Some(journal_version))
            .await
        {
            tracing::warn!(region, id, error = %e, "world journal stays; the janitor finishes it");
        }
    }

    pub(super) async fn read_entity(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<Entity>, Status> {
        Ok(match self.store.get(&entity_key(region, id)).await? {
            Some(v) => {
                let mut e = Entity::decode(v.value.as_ref())
                    .map_err(|e| Status::internal(format!("entity record: {e}")))?;
                e.version = v.version;
                Some(e)
            }
            None => None,
        })
    }

    /// Adds `delta` to the region's entity count (on the entity's stripe); a create past the
    /// bound is refused. Concurrent creates may overshoot the bound by at most their number.
    pub(super) async fn count(
        &self,
        region: &RegionDef,
        id: &str,
        delta: i64,
    ) -> Result<u64, Status> {
        if delta > 0
            && self.entity_count(&region.region.id).await? >= u64::from(self.regions.max_entities)
        {
            return Err(Status::new(
                crate::kit::status::Code::ResourceExhausted,
                format!(
                    "region {} holds its maximum of {} entities",
                    region.region.id, self.regions.max_entities
                ),
            ));
        }
        let key = count_key(&region.region.id, id);
        for attempt in 0..64 {
            let current = self.store.get(&key).await?;
            let (n, version) = match &current {
                Some(v) => (parse_count(&v.value), v.version),
                None => (0, 0),
            };
            let next = n.saturating_add_signed(delta);
            match self
                .store
                .put(&key, Bytes::from(next.to_string()), Some(version))
                .await
            {
                Ok(_) => return Ok(next),
                Err(StoreError::Conflict { .. }) => {
                    if attempt > 4 {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the entity count kept changing; retry"))
    }

    pub(super) async fn entity_count(&self, region: &str) -> Result<u64, Status> {
        let page = self
            .store
            .list(&count_prefix(region), None, COUNT_STRIPES as usize)
            .await?;
        Ok(page
            .entries
            .iter()
            .map(|(_, v)| parse_count(&v.value))
            .sum())
    }
}

pub(super) fn parse_count(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub(super) fn position(e: &Entity) -> [f64; 3] {
    e.position.as_ref().map_or([0.0; 3], |p| [p.x, p.y, p.z])
}

pub(super) fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn validate_entity(e: &Entity, region: &RegionDef) -> Result<(), Status> {
    if !valid_token(&e.id, 64) {
        return Err(Status::invalid_argument(
            "entity.id must be 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    if !valid_token(&e.kind, 32) {
        return Err(Status::invalid_argument(
            "entity.kind must be 1 to 32 letters, digits, '_' or '-'",
        ));
    }
    let Some(p) = &e.position else {
        return Err(Status::invalid_argument("entity.position is required"));
    };
    let p = [p.x, p.y, p.z];
    if p.iter().any(|v| !v.is_finite()) || !region.contains(p) {
        return Err(Status::invalid_argument(format!(
            "entity.position {p:?} is outside region {} ({:?} to {:?})",
            region.region.id, region.min, region.max
        )));
    }
    if e.attributes.len() > MAX_ATTRIBUTES {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_ATTRIBUTES} attributes, got {}",
            e.attributes.len()
        )));
    }
    for (k, v) in &e.attributes {
        if !valid_token(k, MAX_ATTR_KEY) {
            return Err(Status::invalid_argument(format!(
                "attribute names are 1 to {MAX_ATTR_KEY} letters, digits, '_' or '-'"
            )));
        }
        if v.len() > MAX_ATTR_VALUE {
            return Err(Status::invalid_argument(format!(
                "attribute {k:?} is {} bytes; at most {MAX_ATTR_VALUE}",
                v.len()
            )));
        }
    }
    Ok(())
}

/// An axis-aligned box: `(min, max)`, `[x, y, z]` each, inclusive.
pub(super) type Aabb = ([f64; 3], [f64; 3]);

/// A query box, validated.
pub(super) fn query_box(req: &QueryEntitiesRequest) -> Result<Option<Aabb>, Status> {
    let Some(b) = &req.within else {
        return Ok(None);
    };
    let (Some(min), Some(max)) = (&b.min, &b.max) else {
        return Err(Status::invalid_argument("within needs min and max"));
    };
    let (min, max) = ([min.x, min.y, min.z], [max.x, max.y, max.z]);
    if min.iter().chain(&max).any(|v| !v.is_finite()) || (0..3).any(|i| min[i] > max[i]) {
        return Err(Status::invalid_argument(
            "within.min must not exceed within.max on any axis",
        ));
    }
    Ok(Some((min, max)))
}

pub(super) fn inside(p: [f64; 3], (min, max): Aabb) -> bool {
    (0..3).all(|i| min[i] <= p[i] && p[i] <= max[i])
}
