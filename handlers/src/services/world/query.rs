//! Queries, one bounded page at a time. A page examines at most [`MAX_EXAMINED`] entities and,
//! with a box, at most [`MAX_PAGE_CELLS`] grid cells, whatever the box or the region holds; a
//! cursor says where the next page goes on. Without a box a page walks the entity records in id
//! order; with one, the covering cells in grid order (x, then z), each cell in id order, so a
//! cursor is a cell and an id within it. A client gets its cursor sealed ([`Sealer`]): it
//! names no entity (a page may stop at one the caller may not see) and fits no other query.
//!
//! Who sees what is the caller's [`Viewer`]: services everything, a player their own entity and
//! other players' only within the studio's `player_sight`.

use std::collections::HashMap;

use super::*;
use crate::kit::sealed::Sealer;
use crate::kit::store::Page as StorePage;

/// Most entities one page examines: about a millisecond of decoding, whatever the region holds.
pub const MAX_EXAMINED: usize = 1_000;
/// Most grid cells one page of a box query covers.
pub const MAX_PAGE_CELLS: usize = 64;
/// A cell's first read, when many are missing from the cache, is at least this many copies.
const MIN_CELL_READ: usize = 16;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cursor {
    /// The whole region: the records after this id.
    Records { after: String },
    /// A box: from this cell (grid x, z), after this id within it (empty: from its first).
    Cells { cell: (u32, u32), after: String },
}

/// Where the secret that seals page tokens is kept.
const SEAL_KEY: &str = "world.page_key";

impl Cursor {
    /// Its plain form (sealed before a client sees it): only ids and numbers.
    fn text(&self) -> String {
        match self {
            Cursor::Records { after } => format!("r.{after}"),
            Cursor::Cells { cell, after } => format!("c.{}_{}.{after}", cell.0, cell.1),
        }
    }

    /// Reads a plain form for a query with (`boxed`) or without a box.
    fn parse(text: &str, boxed: bool) -> Option<Cursor> {
        let id_ok = |id: &str| id.is_empty() || valid_token(id, 64);
        if let Some(after) = text.strip_prefix("r.") {
            return (!boxed && !after.is_empty() && id_ok(after)).then(|| Cursor::Records {
                after: after.to_owned(),
            });
        }
        let (cell, after) = text.strip_prefix("c.").filter(|_| boxed)?.split_once('.')?;
        let (x, z) = cell.split_once('_')?;
        id_ok(after).then_some(())?;
        Some(Cursor::Cells {
            cell: (x.parse().ok()?, z.parse().ok()?),
            after: after.to_owned(),
        })
    }
}

/// What a page token is bound to: the query's region, kind and box, bit for bit.
pub(super) fn query_context(region: &str, kind: &str, b: Option<Aabb>) -> Vec<u8> {
    let bits = b.map(|(min, max)| (min.map(f64::to_bits), max.map(f64::to_bits)));
    format!("{region}\n{kind}\n{bits:?}").into_bytes()
}

impl WorldService {
    async fn sealer(&self) -> Result<&Sealer, Status> {
        self.sealer
            .get_or_try_init(|| Sealer::load_or_create(self.store.as_ref(), SEAL_KEY))
            .await
            .map_err(Status::from)
    }

    /// The token a client sends back for `cursor`: sealed, so it shows no entity id (a hidden
    /// player's included) and opens only for the query it came from.
    pub(super) async fn page_token(
        &self,
        context: &[u8],
        cursor: &Cursor,
    ) -> Result<String, Status> {
        self.sealer().await?.seal(context, cursor.text().as_bytes())
    }

    /// The cursor in `token` (empty: the first page), if this service sealed it for this query.
    pub(super) async fn cursor(
        &self,
        context: &[u8],
        token: &str,
        boxed: bool,
    ) -> Result<Option<Cursor>, Status> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Status::invalid_argument(
                "pageToken is not one this query handed out (same region, box and kind)",
            )
        };
        let text = self.sealer().await?.open(context, token).ok_or_else(bad)?;
        let text = std::str::from_utf8(&text).map_err(|_| bad())?;
        Cursor::parse(text, boxed).map(Some).ok_or_else(bad)
    }
}

/// One page of an answer.
#[derive(Debug, Default)]
pub(super) struct Page {
    /// Sorted by id.
    pub(super) entities: Vec<Entity>,
    /// Entities examined (copies, records, or cached cells' copies).
    pub(super) examined: usize,
    /// Where the next page starts, if more may remain.
    pub(super) next: Option<Cursor>,
}

/// Whose eyes a query has.
#[derive(Debug, Clone)]
pub(super) enum Viewer {
    /// A service: every entity.
    All,
    /// A player: non-player entities, their own entity, and other players' within `sight` of
    /// `at` (their own entity's position, when it is in the region).
    Player {
        own: String,
        at: Option<[f64; 3]>,
        sight: f64,
    },
}

/// A player's entity: `player-<id>` (DESIGN section 10), or any entity of kind `player`.
fn is_player_entity(e: &Entity) -> bool {
    e.id.starts_with("player-") || e.kind == "player"
}

impl Viewer {
    /// Whether `e` is visible.
    pub(super) fn sees(&self, e: &Entity) -> bool {
        match self {
            Viewer::All => true,
            Viewer::Player { own, at, sight } => {
                if !is_player_entity(e) || e.id == *own {
                    return true;
                }
                let Some(at) = at else {
                    return false;
                };
                let p = position(e);
                let d2: f64 = (0..3).map(|i| (p[i] - at[i]).powi(2)).sum();
                *sight > 0.0 && d2 <= sight * sight
            }
        }
    }
}

impl WorldService {
    /// Who `ctx` is, as a viewer of `region`: a player's own position is read from their
    /// entity, and only when the studio lets players see each other.
    pub(super) async fn viewer(&self, ctx: &Context, region: &str) -> Result<Viewer, Status> {
        let player_id = match &ctx.principal {
            Some(crate::kit::context::Principal::Service { .. }) => return Ok(Viewer::All),
            Some(crate::kit::context::Principal::Player { player_id }) => player_id.as_str(),
            // Nobody in particular: nobody's position.
            None => "",
        };
        // Nobody's entity has an empty id.
        let own = if player_id.is_empty() {
            String::new()
        } else {
            format!("player-{player_id}")
        };
        let sight = self.regions.player_sight;
        let at = if sight > 0.0 && !player_id.is_empty() {
            self.read_entity(region, &own).await?.map(|e| position(&e))
        } else {
            None
        };
        Ok(Viewer::Player { own, at, sight })
    }

    /// A page of the whole region: the records in id order after the cursor's id.
    pub(super) async fn records_page(
        &self,
        region: &str,
        after: Option<&str>,
        limit: usize,
        wanted: &(dyn Fn(&Entity) -> bool + Sync),
    ) -> Result<Page, Status> {
        let prefix = format!("world.ent.{region}.");
        let mut out = Page::default();
        let mut from = after.map(|id| format!("{prefix}{id}"));
        loop {
            let want = PAGE.min(MAX_EXAMINED - out.examined);
            let page = self.store.list(&prefix, from.as_deref(), want).await?;
            let more = page.next_after.is_some();
            let n = page.entries.len();
            for (i, (_, v)) in page.entries.iter().enumerate() {
                out.examined += 1;
                let mut e = Entity::decode(v.value.as_ref())
                    .map_err(|e| Status::internal(format!("entity record: {e}")))?;
                e.version = v.version;
                let last = e.id.clone();
                if wanted(&e) {
                    out.entities.push(e);
                    if out.entities.len() == limit {
                        if more || i + 1 < n {
                            out.next = Some(Cursor::Records { after: last });
                        }
                        return Ok(out);
                    }
                }
                if i + 1 == n && more && out.examined >= MAX_EXAMINED {
                    out.next = Some(Cursor::Records { after: last });
                    return Ok(out);
                }
            }
            match page.next_after {
                Some(next) => from = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// A page of box `b` (validated, not yet clipped) from `from` (a cell and an id in it).
    pub(super) async fn box_page(
        &self,
        region: &RegionDef,
        b: Aabb,
        from: Option<((u32, u32), String)>,
        limit: usize,
        wanted: &(dyn Fn(&Entity) -> bool + Sync),
    ) -> Result<Page, Status> {
        let rid = &region.region.id;
        // Clip to the region; an empty intersection has no entities.
        let clipped = (
            [0, 1, 2].map(|i| b.0[i].max(region.min[i])),
            [0, 1, 2].map(|i| b.1[i].min(region.max[i])),
        );
        if (0..3).any(|i| clipped.0[i] > clipped.1[i]) {
            return Ok(Page::default());
        }
        let (lo, hi) = (
            self.cell_of(region, clipped.0),
            self.cell_of(region, clipped.1),
        );
        let depth = (hi.1 - lo.1 + 1) as usize;
        let total = (hi.0 - lo.0 + 1) as usize * depth;
        let cell_at = |i: usize| (lo.0 + (i / depth) as u32, lo.1 + (i % depth) as u32);
        let (start, first_after) = match from {
            None => (0, String::new()),
            Some((c, after)) => {
                if c.0 < lo.0 || c.0 > hi.0 || c.1 < lo.1 || c.1 > hi.1 {
                    return Err(Status::invalid_argument(
                        "pageToken is not one this query handed out (its cell is outside the box)",
                    ));
                }
                ((c.0 - lo.0) as usize * depth + (c.1 - lo.1) as usize, after)
            }
        };
        let end = total.min(start + MAX_PAGE_CELLS);
        let cells: Vec<(u32, u32)> = (start..end).map(cell_at).collect();
        let names: Vec<String> = cells.iter().map(|(x, z)| format!("{x}_{z}")).collect();

        // Entities mid-change (a journal) are answered from their records, in the cell their
        // record is in, not from their copies.
        let in_flux = self.in_flux(rid).await?;
        let mut flux: HashMap<(u32, u32), Vec<Entity>> = HashMap::new();
        for id in &in_flux {
            if let Some(e) = self.read_entity(rid, id).await? {
                flux.entry(self.cell_of(region, position(&e)))
                    .or_default()
                    .push(e);
            }
        }
        for v in flux.values_mut() {
            v.sort_unstable_by(|x, y| x.id.cmp(&y.id));
        }

        let mut reader = CellReader::open(self, rid, &names, !first_after.is_empty()).await?;
        let mut out = Page::default();
        let mut found: Vec<Entity> = Vec::new();
        'cells: for (k, cell) in cells.iter().enumerate() {
            let after = if k == 0 { first_after.as_str() } else { "" };
            let budget = MAX_EXAMINED - out.examined;
            let (copies, offset, complete) = reader.read(self, k, after, budget).await?;
            let copies = &copies[offset..];
            // Copies in id order, minus those mid-change; those mid-change whose record is
            // here, up to where the read stopped (the rest is the next page's).
            let last_read = copies.last().map(|e| e.id.as_str());
            let mut here: Vec<&Entity> = copies
                .iter()
                .filter(|e| !in_flux.contains(&e.id))
                .chain(flux.get(cell).into_iter().flatten().filter(|e| {
                    e.id.as_str() > after
                        && (complete || last_read.is_some_and(|l| e.id.as_str() <= l))
                }))
                .collect();
            here.sort_by(|x, y| x.id.cmp(&y.id));
            let mut prev = after;
            for e in here {
                if out.examined == MAX_EXAMINED {
                    out.next = Some(Cursor::Cells {
                        cell: *cell,
                        after: prev.to_owned(),
                    });
                    break 'cells;
                }
                out.examined += 1;
                prev = &e.id;
                if inside(position(e), b) && wanted(e) {
                    found.push(e.clone());
                    if found.len() == limit {
                        out.next = Some(Cursor::Cells {
                            cell: *cell,
                            after: e.id.clone(),
                        });
                        break 'cells;
                    }
                }
            }
            if !complete {
                // The read stopped at the budget inside this cell.
                out.next = Some(Cursor::Cells {
                    cell: *cell,
                    after: last_read.unwrap_or(after).to_owned(),
                });
                break;
            }
        }
        if out.next.is_none() && end < total {
            out.next = Some(Cursor::Cells {
                cell: cell_at(end),
                after: String::new(),
            });
        }
        // By id; a copy read mid-move may be met twice in a page: the newer wins.
        found.sort_by(|x, y| x.id.cmp(&y.id).then(y.version.cmp(&x.version)));
        found.dedup_by(|later, kept| later.id == kept.id);
        out.entities = found;
        Ok(out)
    }

    /// Ids of the region's entities with a journal (a change in flight).
    async fn in_flux(&self, region: &str) -> Result<HashSet<String>, Status> {
        let journals = format!("world.lock.{region}.");
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
                None => return Ok(in_flux),
            }
        }
    }
}

/// The copies of a page's cells, each read once: from the cache when its generation is
/// unchanged, else from the store, no further than the page's budget.
struct CellReader {
    prefixes: Vec<String>,
    generations: Vec<Option<u64>>,
    cached: Vec<Option<Arc<[Entity]>>>,
    /// First listings of cells missing from the cache, read together.
    first: Vec<Option<StorePage>>,
}

impl CellReader {
    /// Reads the cells' generations, and together the first copies of those not cached (the
    /// first cell only later when the page starts inside it).
    async fn open(
        svc: &WorldService,
        region: &str,
        names: &[String],
        first_continues: bool,
    ) -> Result<CellReader, Status> {
        let keys: Vec<String> = names.iter().map(|c| generation_key(region, c)).collect();
        let generations: Vec<Option<u64>> = svc
            .store
            .get_many(&keys)
            .await?
            .into_iter()
            .map(|v| v.map(|v| v.version))
            .collect();
        let prefixes: Vec<String> = names.iter().map(|c| cell_prefix(region, c)).collect();
        let cached: Vec<Option<Arc<[Entity]>>> = prefixes
            .iter()
            .zip(&generations)
            .map(|(p, g)| svc.cells.get(p, *g))
            .collect();
        let missing: Vec<usize> = (0..names.len())
            .filter(|&i| cached[i].is_none() && !(i == 0 && first_continues))
            .collect();
        let mut first: Vec<Option<StorePage>> = (0..names.len()).map(|_| None).collect();
        if !missing.is_empty() {
            // Enough of each for the page's budget between them, never the whole of a crowd.
            let each = (MAX_EXAMINED / missing.len()).clamp(MIN_CELL_READ, PAGE);
            let wanted: Vec<String> = missing.iter().map(|&i| prefixes[i].clone()).collect();
            let pages = svc.store.list_many(&wanted, each).await?;
            for (i, page) in missing.into_iter().zip(pages) {
                first[i] = Some(page);
            }
        }
        Ok(CellReader {
            prefixes,
            generations,
            cached,
            first,
        })
    }

    /// Cell `k`'s copies after id `after` (empty: all), in id order, decoding at most `budget`:
    /// the copies, the offset where those after `after` start, and whether the cell was read to
    /// its end. A cell read whole is cached at the generation read before it.
    async fn read(
        &mut self,
        svc: &WorldService,
        k: usize,
        after: &str,
        budget: usize,
    ) -> Result<(Arc<[Entity]>, usize, bool), Status> {
        if let Some(copies) = &self.cached[k] {
            let offset = copies.partition_point(|e| e.id.as_str() <= after);
            return Ok((Arc::clone(copies), offset, true));
        }
        let prefix = &self.prefixes[k];
        let mut page = match self.first[k].take() {
            Some(p) => p,
            None if budget == 0 => return Ok((Arc::from(Vec::new()), 0, false)),
            None => {
                let from = (!after.is_empty()).then(|| format!("{prefix}{after}"));
                svc.store
                    .list(prefix, from.as_deref(), PAGE.min(budget))
                    .await?
            }
        };
        let mut copies = Vec::with_capacity(page.entries.len().min(budget));
        let complete = loop {
            for (_, v) in &page.entries {
                if copies.len() == budget {
                    return Ok((copies.into(), 0, false));
                }
                copies.push(
                    Entity::decode(v.value.as_ref())
                        .map_err(|e| Status::internal(format!("entity copy: {e}")))?,
                );
            }
            match page.next_after.take() {
                None => break true,
                Some(_) if copies.len() >= budget => break false,
                Some(next) => {
                    page = svc
                        .store
                        .list(prefix, Some(&next), PAGE.min(budget - copies.len()))
                        .await?;
                }
            }
        };
        let copies: Arc<[Entity]> = copies.into();
        if complete && after.is_empty() {
            svc.cells
                .put(prefix, self.generations[k], Arc::clone(&copies));
        }
        Ok((copies, 0, complete))
    }
}
