//! The grid's cells: the entity copies in a cell, the cell's generation, and a cache of decoded
//! cells that a query trusts only while the cell's generation is unchanged.
//!
//! Every write of a copy into or out of a cell is followed by a write of the cell's generation
//! key, `world.cgen.<region>.<cell>`, whose store version is the generation. A box query reads
//! the generations of the cells it covers (one small read), then lists only the cells whose
//! cached generation differs. Reading the generation before the listing is what makes this
//! exact: a listing may be newer than the generation it is filed under, never older, and any
//! write after that read bumps the generation the next query sees. Replicas sharing a store see
//! each other's bumps, so the cache is per process yet never serves another replica's old cell.
//! A change that dies between its copy and its bump leaves its journal, and a query answers a
//! journaled entity from its record, never from a cell; the janitor's finish bumps.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::world::v1::Entity;

use super::WorldService;
use crate::kit::status::Status;

/// Most entity copies held decoded across all cached cells (a few tens of MB at most).
const MAX_CACHED_COPIES: usize = 100_000;

pub(super) fn cell_prefix(region: &str, cell: &str) -> String {
    format!("world.cell.{region}.{cell}.")
}

pub(super) fn generation_key(region: &str, cell: &str) -> String {
    format!("world.cgen.{region}.{cell}")
}

/// One cell's copies, decoded, as of a generation (`None`: the cell was never written).
struct Cached {
    generation: Option<u64>,
    copies: Arc<[Entity]>,
}

#[derive(Default)]
struct Inner {
    cells: HashMap<String, Cached>,
    copies: usize,
}

/// Decoded cells by cell prefix, bounded by the copies they hold.
#[derive(Default)]
pub(super) struct CellCache {
    inner: RwLock<Inner>,
}

impl CellCache {
    pub(super) fn get(&self, cell: &str, generation: Option<u64>) -> Option<Arc<[Entity]>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .cells
            .get(cell)
            .filter(|c| c.generation == generation)
            .map(|c| Arc::clone(&c.copies))
    }

    pub(super) fn put(&self, cell: &str, generation: Option<u64>, copies: Arc<[Entity]>) {
        // A crowd too big to share the cache with others is read each time.
        if copies.len() > MAX_CACHED_COPIES / 4 {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let n = copies.len();
        if let Some(old) = inner
            .cells
            .insert(cell.to_owned(), Cached { generation, copies })
        {
            inner.copies -= old.copies.len();
        }
        inner.copies += n;
        // Evict arbitrary other cells (hash order) until the bound holds.
        while inner.copies > MAX_CACHED_COPIES {
            let Some(victim) = inner.cells.keys().find(|k| *k != cell).cloned() else {
                break;
            };
            if let Some(old) = inner.cells.remove(&victim) {
                inner.copies -= old.copies.len();
            }
        }
    }

    fn forget(&self, cell: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.cells.remove(cell) {
            inner.copies -= old.copies.len();
        }
    }
}

impl WorldService {
    /// Writes `entity`'s copy into `cell`, then bumps the cell's generation.
    pub(super) async fn put_copy(
        &self,
        region: &str,
        cell: &str,
        entity: &Entity,
    ) -> Result<(), Status> {
        self.store
            .put(
                &format!("{}{}", cell_prefix(region, cell), entity.id),
                Bytes::from(entity.encode_to_vec()),
                None,
            )
            .await?;
        self.bump(region, cell).await
    }

    /// Removes entity `id`'s copy from `cell`, then bumps the cell's generation.
    pub(super) async fn delete_copy(
        &self,
        region: &str,
        cell: &str,
        id: &str,
    ) -> Result<(), Status> {
        self.store
            .delete(&format!("{}{id}", cell_prefix(region, cell)), None)
            .await?;
        self.bump(region, cell).await
    }

    async fn bump(&self, region: &str, cell: &str) -> Result<(), Status> {
        self.cells.forget(&cell_prefix(region, cell));
        self.store
            .put(&generation_key(region, cell), Bytes::new(), None)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(n: usize) -> Arc<[Entity]> {
        (0..n)
            .map(|i| Entity {
                id: format!("e{i}"),
                ..Entity::default()
            })
            .collect()
    }

    #[test]
    fn a_cell_is_served_only_at_its_generation() {
        let cache = CellCache::default();
        cache.put("world.cell.r.0_0.", Some(7), copies(3));
        assert_eq!(cache.get("world.cell.r.0_0.", Some(7)).unwrap().len(), 3);
        assert!(cache.get("world.cell.r.0_0.", Some(8)).is_none());
        assert!(cache.get("world.cell.r.0_0.", None).is_none());
        assert!(cache.get("world.cell.r.0_1.", Some(7)).is_none());
        cache.forget("world.cell.r.0_0.");
        assert!(cache.get("world.cell.r.0_0.", Some(7)).is_none());
    }

    #[test]
    fn the_cache_holds_at_most_its_bound() {
        let cache = CellCache::default();
        for i in 0..40 {
            cache.put(&format!("world.cell.r.{i}_0."), Some(1), copies(10_000));
        }
        let inner = cache.inner.read().unwrap();
        assert!(inner.copies <= MAX_CACHED_COPIES, "{}", inner.copies);
        assert_eq!(
            inner.copies,
            inner.cells.values().map(|c| c.copies.len()).sum::<usize>()
        );
        // The newest is kept.
        assert!(inner.cells.contains_key("world.cell.r.39_0."));
        drop(inner);
        // A crowd past a quarter of the bound is not cached at all.
        cache.put(
            "world.cell.r.big.",
            Some(1),
            copies(MAX_CACHED_COPIES / 4 + 1),
        );
        assert!(cache.get("world.cell.r.big.", Some(1)).is_none());
    }
}
