use std::collections::BTreeMap;

use proto::aicore::world::v1::{Box as Bounds, Vec3, WORLD_SERVICE};
use rand::{Rng as _, SeedableRng as _};

use super::*;
use crate::kit::calls::fake::Bus;
use crate::kit::content::Content as _;
use crate::kit::content::Source;
use crate::kit::status::Code;

fn world_with(regions: Regions) -> (tempfile::TempDir, Arc<dyn Store>, WorldService, Arc<Bus>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let (calls, bus) = Bus::connected();
    let svc = WorldService::new(
        Arc::clone(&store),
        Arc::new(regions),
        calls.from(WORLD_SERVICE),
    );
    (dir, store, svc, bus)
}

fn world() -> (tempfile::TempDir, Arc<dyn Store>, WorldService, Arc<Bus>) {
    world_with(Regions::embedded().unwrap())
}

fn ctx() -> Context {
    crate::kit::testing::service("gs")
}

fn entity(id: &str, kind: &str, x: f64, z: f64) -> Entity {
    Entity {
        id: id.into(),
        region_id: "hearthvale".into(),
        kind: kind.into(),
        position: Some(Vec3 { x, y: 10.0, z }),
        ..Entity::default()
    }
}

async fn upsert(svc: &WorldService, e: Entity, expected: Option<u64>) -> Result<Entity, Status> {
    svc.upsert_entity(
        ctx(),
        UpsertEntityRequest {
            entity: Some(e),
            expected_version: expected,
        },
    )
    .await
    .map(|r| r.entity.unwrap())
}

fn boxed(min: [f64; 3], max: [f64; 3]) -> Option<Bounds> {
    let v = |a: [f64; 3]| {
        Some(Vec3 {
            x: a[0],
            y: a[1],
            z: a[2],
        })
    };
    Some(Bounds {
        min: v(min),
        max: v(max),
    })
}

/// The first page.
async fn query(
    svc: &WorldService,
    within: Option<Bounds>,
    kind: &str,
    limit: u32,
) -> QueryEntitiesResponse {
    page(svc, ctx(), within, kind, limit, String::new())
        .await
        .unwrap()
}

async fn page(
    svc: &WorldService,
    ctx: Context,
    within: Option<Bounds>,
    kind: &str,
    limit: u32,
    page_token: String,
) -> Result<QueryEntitiesResponse, Status> {
    svc.query_entities(
        ctx,
        QueryEntitiesRequest {
            region_id: "hearthvale".into(),
            within,
            kind: kind.into(),
            limit,
            page_token,
        },
    )
    .await
}

/// Every page, as `ctx` sees them: the entities (in page order) and how many pages it took.
/// Each page keeps to its bounds.
async fn query_all_as(
    svc: &WorldService,
    ctx: Context,
    within: Option<Bounds>,
    kind: &str,
    limit: u32,
) -> (Vec<Entity>, usize) {
    let (mut all, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let r = page(svc, ctx.clone(), within, kind, limit, token)
            .await
            .unwrap();
        pages += 1;
        assert!(r.scanned as usize <= MAX_EXAMINED, "{}", r.scanned);
        assert!(r.entities.len() <= if limit == 0 { 100 } else { limit as usize });
        assert!(
            r.entities.windows(2).all(|w| w[0].id < w[1].id),
            "a page is by id"
        );
        all.extend(r.entities);
        if r.next_page_token.is_empty() {
            return (all, pages);
        }
        token = r.next_page_token;
        assert!(pages < 10_000, "paging ends");
    }
}

/// Every page, by id: what the query's whole answer is.
async fn query_all(
    svc: &WorldService,
    within: Option<Bounds>,
    kind: &str,
    limit: u32,
) -> QueryEntitiesResponse {
    let (mut entities, _) = query_all_as(svc, ctx(), within, kind, limit).await;
    entities.sort_by(|x, y| x.id.cmp(&y.id));
    QueryEntitiesResponse {
        entities,
        ..QueryEntitiesResponse::default()
    }
}

#[test]
fn the_shipped_regions_load() {
    let r = Regions::embedded().unwrap();
    assert!(r.list.len() >= 8);
    for def in &r.list {
        assert!(!def.region.name.is_empty() && !def.region.description.is_empty());
        assert!(def.region.bounds.is_some());
    }
    let biomes: std::collections::BTreeSet<_> =
        r.list.iter().map(|d| d.region.biome.as_str()).collect();
    assert!(biomes.len() >= 6, "{biomes:?}");
}

#[test]
fn bad_region_files_name_the_file_and_line() {
    let region = |id: &str, min: &str, max: &str| {
        format!(
            "[[region]]\nid = \"{id}\"\nname = \"N\"\nbiome = \"grassland\"\nmin = {min}\nmax = {max}\ndescription = \"d\"\n"
        )
    };
    let head = "cell_size = 100.0\nmax_entities = 10\nstart_region = \"a\"\nstart_position = [1.0, 1.0, 1.0]\n\n";
    let parse = |text: String| Regions::parse(&Source::embedded("r.toml", &text)).unwrap_err();
    let dup = parse(format!(
        "{head}{}{}",
        region("a", "[0.0,0.0,0.0]", "[10.0,10.0,10.0]"),
        region("a", "[20.0,0.0,0.0]", "[30.0,10.0,10.0]")
    ));
    assert_eq!(dup.line, 14, "{dup}");
    assert!(dup.to_string().contains("appears twice"), "{dup}");
    let inverted = parse(format!(
        "{head}{}",
        region("a", "[10.0,0.0,0.0]", "[0.0,10.0,10.0]")
    ));
    assert!(inverted.to_string().starts_with("r.toml:6: "), "{inverted}");
    let overlap = parse(format!(
        "{head}{}{}",
        region("a", "[0.0,0.0,0.0]", "[10.0,10.0,10.0]"),
        region("b", "[5.0,0.0,5.0]", "[30.0,10.0,30.0]")
    ));
    assert!(overlap.to_string().contains("overlaps"), "{overlap}");
    let cell = parse(format!(
        "cell_size = 0.0\nmax_entities = 10\nstart_region = \"a\"\nstart_position = [1.0, 1.0, 1.0]\n{}",
        region("a", "[0.0,0.0,0.0]", "[1.0,1.0,1.0]")
    ));
    assert_eq!(cell.line, 1, "{cell}");
}

#[tokio::test]
async fn regions_are_listed_and_unknown_ones_are_not_found() {
    let (_d, _s, svc, _) = world();
    let list = svc
        .list_regions(ctx(), ListRegionsRequest {})
        .await
        .unwrap();
    assert!(
        list.regions
            .iter()
            .any(|r| r.id == "thornwood" && r.biome == "temperate_forest")
    );
    let err = svc
        .get_region(
            ctx(),
            GetRegionRequest {
                region_id: "atlantis".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn upserts_are_compare_and_set_and_publish_one_event_each() {
    let (_d, _s, svc, bus) = world();
    let e = upsert(&svc, entity("wolf-1", "npc", 2100.0, 100.0), Some(0))
        .await
        .unwrap();
    assert!(e.version > 0);
    // Stale: 409, unchanged.
    let mut moved = entity("wolf-1", "npc", 2200.0, 100.0);
    let stale = upsert(&svc, moved.clone(), Some(e.version + 7))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let again = upsert(&svc, entity("wolf-1", "npc", 0.0, 0.0), Some(0)).await;
    assert_eq!(
        again.unwrap_err().code(),
        Code::InvalidArgument,
        "outside hearthvale"
    );
    let created_twice = upsert(&svc, moved.clone(), Some(0)).await.unwrap_err();
    assert_eq!(created_twice.code(), Code::Aborted);
    let all = query(&svc, None, "", 0).await.entities;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].position.as_ref().unwrap().x, 2100.0);

    moved.attributes.insert("hp".into(), "40".into());
    let e2 = upsert(&svc, moved, Some(e.version)).await.unwrap();
    assert!(e2.version > e.version);
    svc.remove_entity(
        ctx(),
        RemoveEntityRequest {
            region_id: "hearthvale".into(),
            entity_id: "wolf-1".into(),
            expected_version: Some(e2.version),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        bus.events(),
        vec![
            (
                "world.hearthvale".to_string(),
                "world.entity.upserted".to_string()
            ),
            (
                "world.hearthvale".to_string(),
                "world.entity.upserted".to_string()
            ),
            (
                "world.hearthvale".to_string(),
                "world.entity.removed".to_string()
            ),
        ],
        "one event per successful change, none for refused ones"
    );
    let payload = bus.published.lock().unwrap()[1].2.clone();
    assert_eq!(payload["attributes"]["hp"], "40");
    // Each payload is exactly its message's proto3 JSON: the Entity as QueryEntities says it.
    let upserted: proto::aicore::world::v1::Entity = bus.payload(1);
    assert_eq!(
        payload["version"],
        upserted.version.to_string(),
        "uint64 as a string"
    );
    let removed: proto::aicore::world::v1::EntityRemoved = bus.payload(2);
    assert_eq!(removed.region_id, "hearthvale");
    let gone = svc
        .remove_entity(
            ctx(),
            RemoveEntityRequest {
                region_id: "hearthvale".into(),
                entity_id: "wolf-1".into(),
                expected_version: None,
            },
        )
        .await;
    assert_eq!(gone.unwrap_err().code(), Code::NotFound);
    let count = svc
        .get_region(
            ctx(),
            GetRegionRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .entity_count;
    assert_eq!(count, 0);
}

#[tokio::test]
async fn bounds_on_entities_and_regions() {
    let text = format!(
        "cell_size = 100.0\nmax_entities = 2\nstart_region = \"hearthvale\"\nstart_position = [3010.0, 48.0, 1870.0]\n{}",
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/world/regions.toml"
        ))
        .unwrap()
        .split_once("[[region]]")
        .map(|(_, rest)| format!("[[region]]{rest}"))
        .unwrap()
    );
    let (_d, _s, svc, _) =
        world_with(Regions::parse(&Source::embedded("small.toml", &text)).unwrap());
    upsert(&svc, entity("a", "item", 2001.0, 1.0), None)
        .await
        .unwrap();
    upsert(&svc, entity("b", "item", 2002.0, 1.0), None)
        .await
        .unwrap();
    let full = upsert(&svc, entity("c", "item", 2003.0, 1.0), None)
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted);
    // Updating one that exists is fine at the bound.
    upsert(&svc, entity("a", "item", 2009.0, 1.0), None)
        .await
        .unwrap();

    let mut many = entity("a", "item", 2001.0, 1.0);
    for i in 0..=MAX_ATTRIBUTES {
        many.attributes.insert(format!("k{i}"), "v".into());
    }
    assert_eq!(
        upsert(&svc, many, None).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut long = entity("a", "item", 2001.0, 1.0);
    long.attributes
        .insert("lore".into(), "x".repeat(MAX_ATTR_VALUE + 1));
    assert_eq!(
        upsert(&svc, long, None).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    for bad in ["", "a.b", "../x", &"x".repeat(65)] {
        let e = entity(bad, "item", 2001.0, 1.0);
        assert_eq!(
            upsert(&svc, e, None).await.unwrap_err().code(),
            Code::InvalidArgument,
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn queries_are_exact_edges_kind_and_limit() {
    let (_d, _s, svc, _) = world();
    // On a cell edge (x = 2100 is where cell 1 starts) and the box's edge.
    upsert(&svc, entity("edge", "npc", 2100.0, 100.0), None)
        .await
        .unwrap();
    upsert(&svc, entity("in", "item", 2150.0, 150.0), None)
        .await
        .unwrap();
    upsert(&svc, entity("out", "npc", 2200.001, 150.0), None)
        .await
        .unwrap();
    let b = boxed([2100.0, 0.0, 100.0], [2200.0, 20.0, 200.0]);
    let ids = |r: QueryEntitiesResponse| r.entities.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(query(&svc, b, "", 0).await), vec!["edge", "in"]);
    assert_eq!(ids(query(&svc, b, "npc", 0).await), vec!["edge"]);
    assert_eq!(ids(query(&svc, b, "", 1).await), vec!["edge"]);
    let bad = svc
        .query_entities(
            ctx(),
            QueryEntitiesRequest {
                region_id: "hearthvale".into(),
                within: boxed([10.0, 0.0, 0.0], [0.0, 1.0, 1.0]),
                ..QueryEntitiesRequest::default()
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
}

/// Random boxes (and kinds) queried on `svc`, each answer against a brute-force scan of `model`.
async fn check_queries(
    svc: &WorldService,
    model: &BTreeMap<String, Entity>,
    rng: &mut rand::rngs::StdRng,
    n: usize,
) {
    let kinds = ["npc", "item", "player"];
    for _ in 0..n {
        let (x0, z0) = (
            rng.gen_range(2000.0..=4000.0_f64).round(),
            rng.gen_range(0.0..=2000.0_f64).round(),
        );
        let (w, d) = (
            rng.gen_range(0.0..600.0_f64).round(),
            rng.gen_range(0.0..600.0_f64).round(),
        );
        let (min, max) = ([x0, 0.0, z0], [x0 + w, 20.0, z0 + d]);
        let kind = if rng.gen_bool(0.3) {
            kinds[rng.gen_range(0..3)]
        } else {
            ""
        };
        let limit = [0, 40, 500][rng.gen_range(0..3)];
        let got = query_all(svc, boxed(min, max), kind, limit).await;
        let want: Vec<&Entity> = model
            .values()
            .filter(|e| inside(position(e), (min, max)) && (kind.is_empty() || e.kind == kind))
            .collect();
        let got_ids: Vec<(&str, u64)> = got
            .entities
            .iter()
            .map(|e| (e.id.as_str(), e.version))
            .collect();
        let want_ids: Vec<(&str, u64)> = want.iter().map(|e| (e.id.as_str(), e.version)).collect();
        assert_eq!(got_ids, want_ids, "box {min:?}..{max:?} kind {kind:?}");
    }
}

#[tokio::test]
async fn random_changes_always_match_a_brute_force_scan() {
    // Two replicas over one store, changes spread over both and queries on both as they go: a
    // cell one replica keeps decoded is never served after the other changed it.
    let (_d, store, a, bus) = world();
    let b = WorldService::new(
        Arc::clone(&store),
        Arc::clone(&a.regions),
        a.events.0.clone(),
    );
    let replicas = [&a, &b];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model: BTreeMap<String, Entity> = BTreeMap::new();
    let kinds = ["npc", "item", "player"];
    let (upserts, moves, removes) = (10_000, 1_000, 500);
    let point = |rng: &mut rand::rngs::StdRng| {
        (
            rng.gen_range(2000.0..=4000.0_f64).round(),
            rng.gen_range(0.0..=2000.0_f64).round(),
        )
    };
    for i in 0..upserts {
        let (x, z) = point(&mut rng);
        let e = entity(&format!("e{i}"), kinds[i % 3], x, z);
        let saved = upsert(replicas[i % 2], e, Some(0)).await.unwrap();
        model.insert(saved.id.clone(), saved);
        if i % 2000 == 1999 {
            check_queries(replicas[i % 2], &model, &mut rng, 5).await;
            check_queries(replicas[(i + 1) % 2], &model, &mut rng, 5).await;
        }
    }
    for m in 0..moves {
        let id = format!("e{}", rng.gen_range(0..upserts));
        let Some(old) = model.get(&id).cloned() else {
            continue;
        };
        let (x, z) = point(&mut rng);
        let mut e = entity(&id, &old.kind, x, z);
        e.attributes.insert("moved".into(), "yes".into());
        let saved = upsert(replicas[m % 2], e, Some(old.version)).await.unwrap();
        model.insert(id, saved);
        if m % 100 == 99 {
            check_queries(replicas[(m + 1) % 2], &model, &mut rng, 5).await;
        }
    }
    let mut removed = 0;
    while removed < removes {
        let id = format!("e{}", rng.gen_range(0..upserts));
        if let Some(old) = model.remove(&id) {
            replicas[removed % 2]
                .remove_entity(
                    ctx(),
                    RemoveEntityRequest {
                        region_id: "hearthvale".into(),
                        entity_id: id,
                        expected_version: Some(old.version),
                    },
                )
                .await
                .unwrap();
            removed += 1;
            if removed % 100 == 0 {
                check_queries(replicas[(removed + 1) % 2], &model, &mut rng, 5).await;
            }
        }
    }
    assert_eq!(
        bus.published.lock().unwrap().len(),
        upserts + moves + removes
    );
    check_queries(&a, &model, &mut rng, 30).await;
    check_queries(&b, &model, &mut rng, 30).await;
    let count = a
        .get_region(
            ctx(),
            GetRegionRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .entity_count;
    assert_eq!(count as usize, model.len());
}

#[tokio::test]
async fn a_move_cut_short_is_never_lost_or_doubled_and_is_finished_once() {
    let (_d, store, svc, bus) = world();
    let e = upsert(&svc, entity("cart", "item", 2050.0, 50.0), None)
        .await
        .unwrap();
    let region = svc.regions.get("hearthvale").unwrap().clone();
    // A process takes the journal and commits a move to another cell, then dies before the
    // cells and the event.
    let from = svc.cell_name(&region, position(&e));
    svc.begin("hearthvale", "cart", e.version, Some(from))
        .await
        .unwrap();
    let mut moved = entity("cart", "item", 3950.0, 1950.0);
    let v = store
        .put(
            &entity_key("hearthvale", "cart"),
            Bytes::from(moved.encode_to_vec()),
            Some(e.version),
        )
        .await
        .unwrap();
    moved.version = v;
    let whole = boxed([2000.0, 0.0, 0.0], [4000.0, 20.0, 2000.0]);
    let old_place = boxed([2000.0, 0.0, 0.0], [2100.0, 20.0, 100.0]);
    let new_place = boxed([3900.0, 0.0, 1900.0], [4000.0, 20.0, 2000.0]);
    let ids = |r: QueryEntitiesResponse| {
        r.entities
            .into_iter()
            .map(|e| (e.id, e.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(query_all(&svc, whole, "", 0).await),
        vec![("cart".to_string(), v)]
    );
    assert!(ids(query(&svc, old_place, "", 0).await).is_empty());
    assert_eq!(
        ids(query(&svc, new_place, "", 0).await),
        vec![("cart".to_string(), v)]
    );
    // A change meanwhile is refused rather than racing the unfinished one.
    let busy = upsert(&svc, entity("cart", "item", 2050.0, 50.0), None)
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::Aborted);
    assert_eq!(bus.published.lock().unwrap().len(), 1);

    // The janitor finishes it (once, even if run twice).
    assert_eq!(svc.repair(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(svc.repair(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(
        bus.published.lock().unwrap().len(),
        2,
        "the move's one event"
    );
    assert_eq!(
        ids(query_all(&svc, whole, "", 0).await),
        vec![("cart".to_string(), v)]
    );
    assert!(ids(query(&svc, old_place, "", 0).await).is_empty());
    assert_eq!(
        ids(query(&svc, new_place, "", 0).await),
        vec![("cart".to_string(), v)]
    );
    upsert(&svc, entity("cart", "item", 2050.0, 50.0), Some(v))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_event_leaves_the_change_to_be_finished() {
    let (_d, _s, svc, bus) = world();
    *bus.fail.lock().unwrap() = Some(Status::unavailable("bus down", Duration::from_secs(1)));
    let e = upsert(&svc, entity("lamp", "item", 2500.0, 500.0), None)
        .await
        .unwrap();
    assert!(bus.published.lock().unwrap().is_empty());
    *bus.fail.lock().unwrap() = None;
    assert_eq!(svc.repair(Duration::ZERO).await.unwrap(), 1);
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].3,
        format!("world:hearthvale:lamp:{}", e.version)
    );
}

/// Entities written straight into the store (record, then cell copy), as upserts would leave
/// them, without their events: quick enough to fill a cell with a crowd.
async fn plant(svc: &WorldService, store: &Arc<dyn Store>, entities: &[Entity]) {
    let region = svc.regions.get("hearthvale").unwrap().clone();
    for e in entities {
        let mut e = e.clone();
        e.version = 0;
        e.version = store
            .put(
                &entity_key("hearthvale", &e.id),
                Bytes::from(e.encode_to_vec()),
                None,
            )
            .await
            .unwrap();
        let cell = svc.cell_name(&region, position(&e));
        svc.put_copy("hearthvale", &cell, &e).await.unwrap();
    }
}

fn ids_of(entities: &[Entity]) -> Vec<&str> {
    entities.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn a_page_examines_a_bounded_number_whatever_the_box_or_region_holds() {
    let (_d, store, svc, _) = world();
    // A crowd of 2,500 in one cell (1_1), and three NPCs: one in the crowd's cell, two far off.
    let mut all: Vec<Entity> = (0..2500)
        .map(|i| {
            entity(
                &format!("e{i:04}"),
                "item",
                2100.0 + f64::from(i % 100),
                100.0 + f64::from(i / 100),
            )
        })
        .collect();
    all.push(entity("npc-in-crowd", "npc", 2150.0, 150.0));
    all.push(entity("npc-far", "npc", 3950.0, 1950.0));
    all.push(entity("npc-near", "npc", 2050.0, 50.0));
    plant(&svc, &store, &all).await;
    let crowd_cell = boxed([2100.0, 0.0, 100.0], [2199.0, 20.0, 199.0]);
    let whole = boxed([0.0, -100.0, -100.0], [9000.0, 100.0, 9000.0]);

    // A kind that is rare: every page stops at the bound and says where to go on.
    let first = query(&svc, None, "npc", 0).await;
    assert_eq!(first.scanned as usize, MAX_EXAMINED);
    assert!(!first.next_page_token.is_empty());
    let (npcs, pages) = query_all_as(&svc, ctx(), None, "npc", 0).await;
    assert_eq!(ids_of(&npcs), ["npc-far", "npc-in-crowd", "npc-near"]);
    assert_eq!(pages, 3, "2,503 records, 1,000 a page");
    let first = query(&svc, crowd_cell, "npc", 0).await;
    assert_eq!(
        first.scanned as usize, MAX_EXAMINED,
        "one crowded cell is paged too"
    );
    assert!(first.entities.is_empty() && !first.next_page_token.is_empty());
    let (npcs, pages) = query_all_as(&svc, ctx(), crowd_cell, "npc", 0).await;
    assert_eq!(ids_of(&npcs), ["npc-in-crowd"]);
    assert_eq!(pages, 3);
    // A box over the whole region (400 cells): 64 cells at most a page.
    let (npcs, pages) = query_all_as(&svc, ctx(), whole, "npc", 0).await;
    let mut got = ids_of(&npcs);
    got.sort_unstable();
    assert_eq!(got, ["npc-far", "npc-in-crowd", "npc-near"]);
    assert!(pages >= 400_usize.div_ceil(MAX_PAGE_CELLS), "{pages} pages");
    // Everything, each entity exactly once, whatever the page size.
    for limit in [0, 1, 500] {
        let (found, _) = query_all_as(&svc, ctx(), whole, "", limit).await;
        let mut got = ids_of(&found);
        got.sort_unstable();
        let mut want = ids_of(&all);
        want.sort_unstable();
        assert_eq!(got, want, "limit {limit}");
    }
    // Cached cells page the same way (the crowd's cell is too big to cache, the rest are).
    let (again, _) = query_all_as(&svc, ctx(), whole, "npc", 0).await;
    assert_eq!(again.len(), 3);
}

#[tokio::test]
async fn page_tokens_are_only_those_a_query_hands_out() {
    let (_d, store, svc, _) = world();
    let crowd: Vec<Entity> = (0..1500)
        .map(|i| entity(&format!("player-{i:032x}"), "player", 2150.0, 150.0))
        .collect();
    plant(&svc, &store, &crowd).await;
    let b = boxed([2100.0, 0.0, 100.0], [2299.0, 20.0, 299.0]);
    let first = query(&svc, b, "", 0).await;
    let token = first.next_page_token;
    assert!(!token.is_empty());
    // Sealed: it shows no entity id, not even the hidden player's it stopped at.
    assert!(
        !token.contains("player") && !token.contains("0000"),
        "{token}"
    );
    assert!(page(&svc, ctx(), b, "", 0, token.clone()).await.is_ok());
    // Another replica on the same store takes it.
    let other = WorldService::new(
        Arc::clone(&store),
        Arc::clone(&svc.regions),
        svc.events.0.clone(),
    );
    assert!(page(&other, ctx(), b, "", 0, token.clone()).await.is_ok());
    // Only for the query it came from, and only as handed out.
    let elsewhere = boxed([2100.0, 0.0, 100.0], [2299.0, 20.0, 300.0]);
    let mut flipped = token.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (within, kind, t) in [
        (elsewhere, "", token.as_str()),
        (b, "npc", token.as_str()),
        (None, "", token.as_str()),
        (b, "", flipped.as_str()),
        (b, "", "nonsense"),
        (b, "", "c.1_1.player-0"),
        (None, "", "r.player-0"),
    ] {
        let r = page(&svc, ctx(), within, kind, 0, t.into()).await;
        assert_eq!(
            r.unwrap_err().code(),
            Code::InvalidArgument,
            "{t:?} {kind:?}"
        );
    }
}

const ME: &str = "0123456789abcdef0123456789abcdef";
const THEM: &str = "fedcba9876543210fedcba9876543210";
const FAR: &str = "ffffffffffffffffffffffffffffffff";

#[tokio::test]
async fn players_see_other_players_only_within_the_studios_sight() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/world/regions.toml"
    ))
    .unwrap();
    for sight in [0.0, 50.0] {
        let text = shipped.replace("player_sight = 0.0", &format!("player_sight = {sight:.1}"));
        let regions = Regions::parse(&Source::embedded("r.toml", &text)).unwrap();
        assert_eq!(regions.player_sight, sight);
        let (_d, _s, svc, _) = world_with(regions);
        for e in [
            entity(&format!("player-{ME}"), "player", 2500.0, 400.0),
            entity(&format!("player-{THEM}"), "player", 2530.0, 400.0),
            entity(&format!("player-{FAR}"), "player", 3500.0, 1500.0),
            entity("bot-7", "player", 2510.0, 400.0),
            entity("wolf-1", "npc", 2520.0, 410.0),
        ] {
            upsert(&svc, e, None).await.unwrap();
        }
        let near = boxed([2400.0, 0.0, 300.0], [2600.0, 20.0, 500.0]);
        for within in [None, near] {
            let mut seen = Vec::new();
            let me = crate::kit::testing::player(ME);
            let (found, _) = query_all_as(&svc, me.clone(), within, "", 0).await;
            seen.extend(found.into_iter().map(|e| e.id));
            let mut want = vec![format!("player-{ME}"), "wolf-1".to_owned()];
            if sight > 0.0 {
                want.extend([format!("player-{THEM}"), "bot-7".to_owned()]);
            }
            seen.sort_unstable();
            want.sort_unstable();
            assert_eq!(seen, want, "sight {sight}, box {}", within.is_some());
            // What it cost is not the player's to know.
            let r = page(&svc, me, within, "", 0, String::new()).await.unwrap();
            assert_eq!(r.scanned, 0);
        }
        // Asking for players: themself (one read when they can see no other), and the others
        // in sight.
        let (found, pages) =
            query_all_as(&svc, crate::kit::testing::player(ME), None, "player", 0).await;
        let mut want = vec![format!("player-{ME}")];
        if sight > 0.0 {
            want.extend(["bot-7".to_owned(), format!("player-{THEM}")]);
        }
        let mut got: Vec<String> = found.into_iter().map(|e| e.id).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!((got, pages), (want, 1), "sight {sight}");
        // A player with no entity in the region sees no player at all.
        let stranger = crate::kit::testing::player("00000000000000000000000000000000");
        let (found, _) = query_all_as(&svc, stranger, None, "", 0).await;
        assert_eq!(ids_of(&found), ["wolf-1"], "sight {sight}");
        // Services see every entity, and what it took.
        let all = query(&svc, None, "", 0).await;
        assert_eq!(all.entities.len(), 5);
        assert_eq!(all.scanned, 5);
    }
}

#[tokio::test]
async fn a_player_is_located_by_their_entity_else_in_the_start_region() {
    const P: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    let (_d, store, svc, _) = world();
    let me = || crate::kit::testing::player(P);
    // Not placed yet: the start region and position from content, and no entity.
    let new = svc
        .locate_player(me(), LocatePlayerRequest::default())
        .await
        .unwrap();
    assert_eq!(new.region_id, "hearthvale");
    assert!(new.entity.is_none());
    let start = new.position.unwrap();
    assert_eq!([start.x, start.y, start.z], [3010.0, 48.0, 1870.0]);
    let listed = svc
        .list_regions(ctx(), ListRegionsRequest {})
        .await
        .unwrap();
    assert_eq!(listed.start_region_id, "hearthvale");

    // Placed in Hearthvale, then moved to Thornwood the way bodybroker moves a player: the
    // upsert into the new region comes before the removal from the old one.
    upsert(
        &svc,
        entity(&format!("player-{P}"), "player", 2500.0, 500.0),
        None,
    )
    .await
    .unwrap();
    let here = svc
        .locate_player(me(), LocatePlayerRequest::default())
        .await
        .unwrap();
    assert_eq!(here.region_id, "hearthvale");
    assert_eq!(here.entity.unwrap().position.unwrap().x, 2500.0);
    let thornwood = svc.regions.get("thornwood").unwrap();
    let mut moved = entity(&format!("player-{P}"), "player", 0.0, 0.0);
    moved.region_id = "thornwood".into();
    moved.position = Some(Vec3 {
        x: thornwood.min[0] + 5.0,
        y: thornwood.min[1] + 5.0,
        z: thornwood.min[2] + 5.0,
    });
    upsert(&svc, moved, None).await.unwrap();
    let there = svc
        .locate_player(me(), LocatePlayerRequest::default())
        .await
        .unwrap();
    assert_eq!(there.region_id, "thornwood");

    // A stale hint (its write lost) still finds the player: every region is read, newest wins.
    store
        .put(
            &format!("world.where.{P}"),
            Bytes::from_static(b"saltmere"),
            None,
        )
        .await
        .unwrap();
    let found = svc
        .locate_player(me(), LocatePlayerRequest::default())
        .await
        .unwrap();
    assert_eq!(found.region_id, "thornwood");

    // Attacker: a player naming another player is refused; they locate only themself.
    let err = svc
        .locate_player(
            me(),
            LocatePlayerRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A service names the player.
    let by_service = svc
        .locate_player(
            ctx(),
            LocatePlayerRequest {
                player_id: P.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(by_service.region_id, "thornwood");
    let other = svc
        .locate_player(
            ctx(),
            LocatePlayerRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap();
    assert!(other.entity.is_none());
}
