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
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

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

mod entities;
pub use entities::*;

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
