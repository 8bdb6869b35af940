//! Entities placed from content (NPCs' bodies, from npc content): the world knows only that they
//! are fixed, not what they are.
//!
//! Why seeded into the store rather than merged into answers: a placed body then lives in the
//! same record, cell and count as every other entity, so box queries, paging, GetRegion's count
//! and the region's events need no second path. Seeding is idempotent and compare-and-set: each
//! replica, on its first read of a region (GetRegion, QueryEntities), writes the bodies of that
//! region that are missing or differ from content, through the same journal as UpsertEntity, so
//! two replicas seeding at once, or a restart half-way, end with one body each (the loser of a
//! race sees its compare-and-set fail and finds the winner's body equal). A content change (an
//! NPC moved) is applied by the first replica that reads the region with the new content.
//! UpsertEntity and RemoveEntity refuse a placed id in any region, so no game server or player
//! moves, deletes or impersonates one by accident; to move one, edit the content. A body whose
//! NPC left the content is an ordinary entity again and can be removed.

use std::collections::{BTreeMap, HashSet};

use tokio::sync::OnceCell;

use super::*;

/// The placed entities, and which regions this process has seeded.
#[derive(Default)]
pub struct Placed {
    by_region: BTreeMap<String, Vec<Entity>>,
    ids: HashSet<String>,
    seeded: BTreeMap<String, OnceCell<()>>,
}

impl Placed {
    /// `entities`, each in its `region_id`.
    pub fn new(entities: Vec<Entity>) -> Self {
        let mut placed = Placed::default();
        for e in entities {
            placed.ids.insert(e.id.clone());
            placed
                .seeded
                .entry(e.region_id.clone())
                .or_insert_with(OnceCell::new);
            placed
                .by_region
                .entry(e.region_id.clone())
                .or_default()
                .push(e);
        }
        placed
    }
}

fn same(a: &Entity, b: &Entity) -> bool {
    a.kind == b.kind && a.position == b.position && a.attributes == b.attributes
}

impl WorldService {
    /// This service with entities placed from content (see the module's comment).
    pub fn with_placed(mut self, entities: Vec<Entity>) -> Self {
        self.placed = Arc::new(Placed::new(entities));
        self
    }

    /// Refuses a change to a placed entity, whichever region it names.
    pub(super) fn refuse_placed(&self, id: &str) -> Result<(), Status> {
        if self.placed.ids.contains(id) {
            return Err(Status::failed_precondition(format!(
                "entity {id} is placed from content and cannot be changed or removed here"
            )));
        }
        Ok(())
    }

    /// Seeds the region's placed entities, once per process while it succeeds. A failure is
    /// logged and retried on the next read; the read goes on meanwhile.
    pub(super) async fn ensure_placed(&self, region: &str) {
        let (Some(cell), Some(bodies)) = (
            self.placed.seeded.get(region),
            self.placed.by_region.get(region),
        ) else {
            return;
        };
        let seeded = cell
            .get_or_try_init(|| async {
                for body in bodies {
                    self.seed(body).await?;
                }
                Ok::<(), Status>(())
            })
            .await;
        if let Err(e) = seeded {
            tracing::warn!(region, error = %e, "placing content entities failed; retried on the next read");
        }
    }

    async fn seed(&self, body: &Entity) -> Result<(), Status> {
        let region = self.region(&body.region_id)?;
        let (rid, id) = (body.region_id.as_str(), body.id.as_str());
        for _ in 0..4 {
            let before = self.read_entity(rid, id).await?;
            if before.as_ref().is_some_and(|b| same(b, body)) {
                return Ok(());
            }
            let base = before.as_ref().map_or(0, |e| e.version);
            let from_cell = before.as_ref().map(|e| self.cell_name(region, position(e)));
            let journal = match self.begin(rid, id, base, from_cell.clone()).await {
                Ok(j) => j,
                // Another replica is seeding it: look again.
                Err(e) if e.code() == crate::kit::status::Code::Aborted => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if base == 0
                && let Err(e) = self.count(region, id, 1).await
            {
                self.end(rid, id, journal).await;
                return Err(e);
            }
            let mut entity = body.clone();
            entity.version = 0;
            let committed = self
                .store
                .put(
                    &entity_key(rid, id),
                    Bytes::from(entity.encode_to_vec()),
                    Some(base),
                )
                .await;
            let version = match committed {
                Ok(v) => v,
                Err(e) => {
                    if base == 0 {
                        let _ = self.count(region, id, -1).await;
                    }
                    self.end(rid, id, journal).await;
                    match e {
                        StoreError::Conflict { .. } => continue,
                        e => return Err(e.into()),
                    }
                }
            };
            entity.version = version;
            // Committed: if what follows fails, the journal stays and the janitor finishes it.
            let cell = self.cell_name(region, position(&entity));
            self.put_copy(rid, &cell, &entity).await?;
            if let Some(from) = from_cell.as_deref().filter(|f| *f != cell) {
                self.delete_copy(rid, from, id).await?;
            }
            self.publish_upsert(&Context::default(), &entity).await?;
            self.end(rid, id, journal).await;
            return Ok(());
        }
        Err(Status::aborted(format!(
            "placing {id} kept racing; retried later"
        )))
    }
}
