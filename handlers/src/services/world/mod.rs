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
//! decoded cells, checked against each cell's generation (see `cells`), and answer one bounded
//! page at a time, showing a player only what a player may see (see `query`).
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

mod cells;
pub mod content;
mod locate;
mod placed;
mod query;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::world::v1::{
    Entity, GetRegionRequest, GetRegionResponse, ListRegionsRequest, ListRegionsResponse,
    LocatePlayerRequest, LocatePlayerResponse, QueryEntitiesRequest, QueryEntitiesResponse,
    RemoveEntityRequest, RemoveEntityResponse, UpsertEntityRequest, UpsertEntityResponse,
    WorldServiceHandler,
};
use serde::{Deserialize, Serialize};

pub use content::{RegionDef, Regions};

use self::cells::{CellCache, cell_prefix, generation_key};
use self::query::{Cursor, Viewer};
use crate::kit::calls::Caller;
use crate::kit::clock::now_ms;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

mod entities;
pub use entities::*;
pub use query::{MAX_EXAMINED, MAX_PAGE_CELLS};

impl WorldServiceHandler for WorldService {
    type Context = Context;
    type Error = Status;

    async fn list_regions(
        &self,
        ctx: Context,
        _req: ListRegionsRequest,
    ) -> Result<ListRegionsResponse, Status> {
        let reader = self.texts.reader_for(&ctx, &self.settings, None).await;
        Ok(ListRegionsResponse {
            regions: self
                .regions
                .list
                .iter()
                .map(|r| Self::localized(&r.region, &reader))
                .collect(),
            start_region_id: self.regions.start_region.clone(),
            locale: reader.locale().to_owned(),
        })
    }

    async fn get_region(
        &self,
        ctx: Context,
        req: GetRegionRequest,
    ) -> Result<GetRegionResponse, Status> {
        let region = self.region(&req.region_id)?;
        self.ensure_placed(&req.region_id).await;
        let count = self.entity_count(&req.region_id).await?;
        let reader = self.texts.reader_for(&ctx, &self.settings, None).await;
        Ok(GetRegionResponse {
            region: Some(Self::localized(&region.region, &reader)),
            entity_count: u32::try_from(count).unwrap_or(u32::MAX),
            locale: reader.locale().to_owned(),
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
        self.refuse_placed(&entity.id)?;
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
        if entity.version != 0 {
            self.remember_region(&id, &rid).await;
        }
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
        self.refuse_placed(&id)?;
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

    async fn locate_player(
        &self,
        ctx: Context,
        req: LocatePlayerRequest,
    ) -> Result<LocatePlayerResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        self.locate(&player).await
    }

    async fn query_entities(
        &self,
        ctx: Context,
        req: QueryEntitiesRequest,
    ) -> Result<QueryEntitiesResponse, Status> {
        let region = self.region(&req.region_id)?;
        let rid = &region.region.id;
        self.ensure_placed(rid).await;
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
        let b = query_box(&req)?;
        let context = query::query_context(rid, &req.kind, b);
        let cursor = self.cursor(&context, &req.page_token, b.is_some()).await?;
        let viewer = self.viewer(&ctx, rid).await?;
        // A player who sees no other player and asks for players can only find themself: one
        // read, not a walk through the region.
        if let Viewer::Player { own, sight, .. } = &viewer
            && *sight <= 0.0
            && req.kind == "player"
            && !own.is_empty()
        {
            let me = match self.read_entity(rid, own).await? {
                Some(e) if e.kind == "player" && b.is_none_or(|b| inside(position(&e), b)) => {
                    vec![e]
                }
                _ => Vec::new(),
            };
            return Ok(QueryEntitiesResponse {
                entities: me,
                ..QueryEntitiesResponse::default()
            });
        }
        let wanted = |e: &Entity| (req.kind.is_empty() || e.kind == req.kind) && viewer.sees(e);
        let page = match (b, cursor) {
            (None, from) => {
                let after = match from {
                    Some(Cursor::Records { after }) => Some(after),
                    _ => None,
                };
                self.records_page(rid, after.as_deref(), limit, &wanted)
                    .await?
            }
            (Some(b), from) => {
                let from = match from {
                    Some(Cursor::Cells { cell, after }) => Some((cell, after)),
                    _ => None,
                };
                self.box_page(region, b, from, limit, &wanted).await?
            }
        };
        // What a query costs is the service's business, not a player's.
        let scanned = match viewer {
            Viewer::All => u32::try_from(page.examined).unwrap_or(u32::MAX),
            Viewer::Player { .. } => 0,
        };
        let next_page_token = match &page.next {
            Some(next) => self.page_token(&context, next).await?,
            None => String::new(),
        };
        Ok(QueryEntitiesResponse {
            entities: page.entities,
            scanned,
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests;
