//! `aicore.world.v1.WorldService`: regions (shipped as data) and the entities in them.
//!
//! An entity's record, `world.ent.<region>.<id>`, is the truth; its version is the entity's.
//! A copy sits in its grid cell, `world.cell.<region>.<cx>_<cz>.<id>` (the cell is one key
//! segment), so a box query lists only the cells that cover the box. Every change takes a
//! per-entity journal, `world.lock.<region>.<id>`, that says what it is about to do; the record
//! is written (the commit), then the cells, then one event is published on `world.<region>`
//! (idempotently, keyed by the entity's version), then the journal is removed. A query resolves
//! entities with a journal from their record, so a move is never seen lost or doubled, and
//! [`WorldService::repair`] finishes what a process that died mid-change left. Queries keep
//! decoded cells, checked against each cell's generation (see `cells`).

mod cells;
pub mod content;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::events::v1::{EventBusServiceClient, PublishRequest};
use proto::aicore::world::v1::{
    Entity, GetRegionRequest, GetRegionResponse, ListRegionsRequest, ListRegionsResponse,
    QueryEntitiesRequest, QueryEntitiesResponse, RemoveEntityRequest, RemoveEntityResponse,
    UpsertEntityRequest, UpsertEntityResponse, WorldServiceHandler,
};
use serde::{Deserialize, Serialize};

pub use content::{RegionDef, Regions};

use self::cells::CellCache;
use crate::kit::calls::Caller;
use crate::kit::clock::now_ms;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Most attributes on one entity.
pub const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTR_KEY: usize = 64;
const MAX_ATTR_VALUE: usize = 256;
/// A journal older than this belongs to a change that died; it is finished by whoever finds it.
pub const STALE_JOURNAL: Duration = Duration::from_secs(10);
/// Past this many cells, a box query scans the region's cells in one listing instead.
const MAX_CELL_LISTINGS: usize = 64;
const PAGE: usize = 500;
/// Journals are few (changes in flight); a page this small is read inline.
const JOURNAL_PAGE: usize = 64;

fn entity_key(region: &str, id: &str) -> String {
    format!("world.ent.{region}.{id}")
}
fn journal_key(region: &str, id: &str) -> String {
    format!("world.lock.{region}.{id}")
}
/// The entity count is striped over this many keys, so concurrent creates in one region do not
/// all race on one key.
const COUNT_STRIPES: u64 = 16;

fn count_prefix(region: &str) -> String {
    format!("world.count.{region}.")
}

fn count_key(region: &str, id: &str) -> String {
    let stripe = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) % COUNT_STRIPES;
    format!("world.count.{region}.{stripe:02}")
}

/// What a change is about to do, so that anyone can finish it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// The entity record's version before the change (0: absent).
    base_version: u64,
    /// The cell its copy was in before, if any.
    from_cell: Option<String>,
    /// When the change began (Unix ms).
    at_ms: u64,
}

/// The service.
pub struct WorldService {
    store: Arc<dyn Store>,
    regions: Arc<Regions>,
    events: EventBusServiceClient<Caller>,
    cells: CellCache,
}

impl WorldService {
    /// The service over `store`, publishing through `caller` (the world service's).
    pub fn new(store: Arc<dyn Store>, regions: Arc<Regions>, caller: Caller) -> Self {
        WorldService {
            store,
            regions,
            events: EventBusServiceClient(caller),
            cells: CellCache::default(),
        }
    }

    fn region(&self, id: &str) -> Result<&RegionDef, Status> {
        self.regions
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no region {id:?}")))
    }

    /// The grid cell of a position (x and z), relative to the region's corner.
    fn cell_of(&self, region: &RegionDef, p: [f64; 3]) -> (u32, u32) {
        let c = |v: f64, min: f64| ((v - min) / self.regions.cell_size).floor().max(0.0) as u32;
        (c(p[0], region.min[0]), c(p[2], region.min[2]))
    }

    fn cell_name(&self, region: &RegionDef, p: [f64; 3]) -> String {
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
    async fn finish(
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

    async fn publish_upsert(&self, ctx: &Context, entity: &Entity) -> Result<(), Status> {
        let payload = serde_json::to_value(entity)
            .map_err(|e| Status::internal(format!("entity as JSON: {e}")))?;
        self.publish(
            ctx,
            &entity.region_id,
            "world.entity.upserted",
            payload,
            format!(
                "world:{}:{}:{}",
                entity.region_id, entity.id, entity.version
            ),
        )
        .await
    }

    async fn publish_removal(
        &self,
        ctx: &Context,
        region: &str,
        id: &str,
        version: u64,
    ) -> Result<(), Status> {
        self.publish(
            ctx,
            region,
            "world.entity.removed",
            serde_json::json!({"regionId": region, "id": id, "version": version.to_string()}),
            format!("world:{region}:{id}:removed:{version}"),
        )
        .await
    }

    async fn publish(
        &self,
        ctx: &Context,
        region: &str,
        kind: &str,
        payload: serde_json::Value,
        key: String,
    ) -> Result<(), Status> {
        let payload = serde_json::from_value(payload)
            .map_err(|e| Status::internal(format!("event payload: {e}")))?;
        self.events
            .publish(
                ctx.outgoing().idempotent(key),
                PublishRequest {
                    topic: format!("world.{region}"),
                    r#type: kind.into(),
                    payload: Some(payload),
                },
            )
            .await
            .map(|_| ())
    }

    /// Takes the entity's journal for a change from `base_version`. A journal left by a change
    /// that died is finished first; one in use means a concurrent change: `aborted`.
    async fn begin(
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

    async fn end(&self, region: &str, id: &str, journal_version: u64) {
        if let Err(e) = self
            .store
            .delete(&journal_key(region, id), Some(journal_version))
            .await
        {
            tracing::warn!(region, id, error = %e, "world journal stays; the janitor finishes it");
        }
    }

    async fn read_entity(&self, region: &str, id: &str) -> Result<Option<Entity>, Status> {
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
    async fn count(&self, region: &RegionDef, id: &str, delta: i64) -> Result<u64, Status> {
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

    async fn entity_count(&self, region: &str) -> Result<u64, Status> {
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

fn parse_count(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn position(e: &Entity) -> [f64; 3] {
    e.position.as_ref().map_or([0.0; 3], |p| [p.x, p.y, p.z])
}

fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn validate_entity(e: &Entity, region: &RegionDef) -> Result<(), Status> {
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
type Aabb = ([f64; 3], [f64; 3]);

/// A query box, validated.
fn query_box(req: &QueryEntitiesRequest) -> Result<Option<Aabb>, Status> {
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

fn inside(p: [f64; 3], (min, max): Aabb) -> bool {
    (0..3).all(|i| min[i] <= p[i] && p[i] <= max[i])
}

impl WorldServiceHandler for WorldService {
    type Context = Context;
    type Error = Status;

    async fn list_regions(
        &self,
        _ctx: Context,
        _req: ListRegionsRequest,
    ) -> Result<ListRegionsResponse, Status> {
        Ok(ListRegionsResponse {
            regions: self.regions.list.iter().map(|r| r.region.clone()).collect(),
        })
    }

    async fn get_region(
        &self,
        _ctx: Context,
        req: GetRegionRequest,
    ) -> Result<GetRegionResponse, Status> {
        let region = self.region(&req.region_id)?;
        let count = self.entity_count(&req.region_id).await?;
        Ok(GetRegionResponse {
            region: Some(region.region.clone()),
            entity_count: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }

    async fn upsert_entity(
        &self,
        ctx: Context,
        req: UpsertEntityRequest,
    ) -> Result<UpsertEntityResponse, Status> {
        let mut entity = req
            .entity
            .ok_or_else(|| Status::invalid_argument("entity is required"))?;
        let region = self.region(&entity.region_id)?;
        validate_entity(&entity, region)?;
        let (rid, id) = (entity.region_id.clone(), entity.id.clone());
        let before = self.read_entity(&rid, &id).await?;
        let base = before.as_ref().map_or(0, |e| e.version);
        match req.expected_version {
            Some(expected) if expected != base => {
                return Err(Status::aborted(format!(
                    "version mismatch on entity {id}: expected {expected}, it is at {base}"
                )));
            }
            _ => {}
        }
        let from_cell = before.as_ref().map(|e| self.cell_name(region, position(e)));
        let journal = self.begin(&rid, &id, base, from_cell.clone()).await?;
        let result = async {
            // Under the journal nobody else changes it; a change since our read means retry.
            let now = self.read_entity(&rid, &id).await?.map_or(0, |e| e.version);
            if now != base {
                return Err(Status::aborted(format!(
                    "entity {id} changed meanwhile (now at version {now}); retry"
                )));
            }
            if base == 0 {
                self.count(region, &id, 1).await?;
            }
            entity.version = 0;
            let committed = self
                .store
                .put(
                    &entity_key(&rid, &id),
                    Bytes::from(entity.encode_to_vec()),
                    Some(base),
                )
                .await;
            let version = match committed {
                Ok(v) => v,
                Err(e) => {
                    if base == 0 {
                        let _ = self.count(region, &id, -1).await;
                    }
                    return Err(e.into());
                }
            };
            entity.version = version;
            let cell = self.cell_name(region, position(&entity));
            self.put_copy(&rid, &cell, &entity).await?;
            if let Some(from) = from_cell.as_deref().filter(|f| *f != cell) {
                self.delete_copy(&rid, from, &id).await?;
            }
            self.publish_upsert(&ctx, &entity).await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                self.end(&rid, &id, journal).await;
                Ok(UpsertEntityResponse {
                    entity: Some(entity),
                })
            }
            // Nothing committed: the journal goes.
            Err(e) if entity.version == 0 => {
                self.end(&rid, &id, journal).await;
                Err(e)
            }
            // Committed, but the rest failed: the journal stays, so the janitor finishes it.
            Err(e) => {
                tracing::warn!(region = %rid, id = %id, error = %e, "entity saved; its index or event is finished later");
                Ok(UpsertEntityResponse {
                    entity: Some(entity),
                })
            }
        }
    }

    async fn remove_entity(
        &self,
        ctx: Context,
        req: RemoveEntityRequest,
    ) -> Result<RemoveEntityResponse, Status> {
        let region = self.region(&req.region_id)?;
        let (rid, id) = (req.region_id.clone(), req.entity_id.clone());
        if !valid_token(&id, 64) {
            return Err(Status::invalid_argument(
                "entityId is not a valid entity id",
            ));
        }
        let Some(before) = self.read_entity(&rid, &id).await? else {
            return Err(Status::not_found(format!("no entity {id} in {rid}")));
        };
        if let Some(expected) = req.expected_version.filter(|e| *e != before.version) {
            return Err(Status::aborted(format!(
                "version mismatch on entity {id}: expected {expected}, it is at {}",
                before.version
            )));
        }
        let cell = self.cell_name(region, position(&before));
        let journal = self
            .begin(&rid, &id, before.version, Some(cell.clone()))
            .await?;
        let committed = self
            .store
            .delete(&entity_key(&rid, &id), Some(before.version))
            .await;
        match committed {
            Ok(true) => {}
            Ok(false) => {
                self.end(&rid, &id, journal).await;
                return Err(Status::not_found(format!("no entity {id} in {rid}")));
            }
            Err(StoreError::Conflict { .. }) => {
                self.end(&rid, &id, journal).await;
                return Err(Status::aborted(format!(
                    "entity {id} changed meanwhile; retry"
                )));
            }
            Err(e) => {
                self.end(&rid, &id, journal).await;
                return Err(e.into());
            }
        }
        let rest = async {
            self.count(region, &id, -1).await?;
            self.delete_copy(&rid, &cell, &id).await?;
            self.publish_removal(&ctx, &rid, &id, before.version).await
        }
        .await;
        match rest {
            Ok(()) => self.end(&rid, &id, journal).await,
            Err(e) => {
                tracing::warn!(region = %rid, id = %id, error = %e, "entity removed; its index or event is finished later");
            }
        }
        Ok(RemoveEntityResponse {})
    }

    async fn query_entities(
        &self,
        _ctx: Context,
        req: QueryEntitiesRequest,
    ) -> Result<QueryEntitiesResponse, Status> {
        let region = self.region(&req.region_id)?;
        let rid = &region.region.id;
        let limit = match req.limit {
            0 => 100,
            n @ 1..=500 => n as usize,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to 500, got {n}"
                )));
            }
        };
        if !req.kind.is_empty() && !valid_token(&req.kind, 32) {
            return Err(Status::invalid_argument("kind is not a valid kind"));
        }
        let wanted = |e: &Entity| req.kind.is_empty() || e.kind == req.kind;
        let mut scanned = 0u32;
        let Some(b) = query_box(&req)? else {
            // The whole region: the records, in id order, until `limit`.
            let mut entities = Vec::new();
            let mut after = None;
            let prefix = format!("world.ent.{rid}.");
            loop {
                let page = self.store.list(&prefix, after.as_deref(), PAGE).await?;
                for (_, v) in &page.entries {
                    scanned += 1;
                    let mut e = Entity::decode(v.value.as_ref())
                        .map_err(|e| Status::internal(format!("entity record: {e}")))?;
                    e.version = v.version;
                    if wanted(&e) {
                        entities.push(e);
                        if entities.len() == limit {
                            return Ok(QueryEntitiesResponse { entities, scanned });
                        }
                    }
                }
                match page.next_after {
                    Some(n) => after = Some(n),
                    None => return Ok(QueryEntitiesResponse { entities, scanned }),
                }
            }
        };
        // Clip to the region; an empty intersection has no entities.
        let clipped = (
            [0, 1, 2].map(|i| b.0[i].max(region.min[i])),
            [0, 1, 2].map(|i| b.1[i].min(region.max[i])),
        );
        if (0..3).any(|i| clipped.0[i] > clipped.1[i]) {
            return Ok(QueryEntitiesResponse::default());
        }
        let (lo, hi) = (
            self.cell_of(region, clipped.0),
            self.cell_of(region, clipped.1),
        );
        let cells = (hi.0 - lo.0 + 1) as usize * (hi.1 - lo.1 + 1) as usize;
        // Entities mid-change (a journal) are answered from their records, not their copies.
        let journals = format!("world.lock.{rid}.");
        let mut in_flux = HashSet::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list(&journals, after.as_deref(), JOURNAL_PAGE)
                .await?;
            in_flux.extend(
                page.entries
                    .iter()
                    .filter_map(|(k, _)| k.strip_prefix(&journals).map(str::to_owned)),
            );
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // The covering cells (cached while unchanged), or the region's whole grid in one listing
        // when that is fewer reads.
        let groups: Vec<Arc<[Entity]>> = if cells <= MAX_CELL_LISTINGS {
            let names: Vec<String> = (lo.0..=hi.0)
                .flat_map(|x| (lo.1..=hi.1).map(move |z| format!("{x}_{z}")))
                .collect();
            self.cell_copies(rid, &names).await?
        } else {
            let prefix = format!("world.cell.{rid}.");
            let mut copies = Vec::new();
            let mut after = None;
            loop {
                let page = self.store.list(&prefix, after.as_deref(), PAGE).await?;
                for (_, v) in &page.entries {
                    copies.push(
                        Entity::decode(v.value.as_ref())
                            .map_err(|e| Status::internal(format!("entity copy: {e}")))?,
                    );
                }
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            vec![copies.into()]
        };
        let mut found: Vec<&Entity> = Vec::new();
        for e in groups.iter().flat_map(|g| g.iter()) {
            scanned += 1;
            if inside(position(e), b)
                && wanted(e)
                && (in_flux.is_empty() || !in_flux.contains(&e.id))
            {
                found.push(e);
            }
        }
        // By id; a copy read mid-move may be met twice: the newer wins. Each cell's copies come
        // in id order, and a stable sort merges such runs rather than sorting from scratch.
        found.sort_by(|x, y| x.id.cmp(&y.id).then(y.version.cmp(&x.version)));
        found.dedup_by(|later, kept| later.id == kept.id);
        if in_flux.is_empty() {
            found.truncate(limit);
        }
        let mut entities: Vec<Entity> = found.into_iter().cloned().collect();
        if !in_flux.is_empty() {
            for id in &in_flux {
                if let Some(e) = self.read_entity(rid, id).await? {
                    scanned += 1;
                    if wanted(&e) && inside(position(&e), b) {
                        entities.push(e);
                    }
                }
            }
            entities.sort_unstable_by(|x, y| x.id.cmp(&y.id));
            entities.truncate(limit);
        }
        Ok(QueryEntitiesResponse { entities, scanned })
    }
}

#[cfg(test)]
mod tests;
