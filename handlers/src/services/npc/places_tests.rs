//! NPCs in their places: content checked against the world and the lore, bodies placed in the
//! world, and drift back to the baselines.

use std::sync::Arc;

use proto::aicore::world::v1::{
    Box as Bounds, GetRegionRequest, GetRegionResponse, QueryEntitiesRequest, RemoveEntityRequest,
    UpsertEntityRequest, Vec3, WORLD_SERVICE, WorldServiceHandler as _,
};

use super::{Catalog, State};
use crate::kit::calls::fake::Bus;
use crate::kit::content::{Content as _, Source};
use crate::kit::status::{Code, Status};
use crate::kit::testing::{player, service};
use crate::services::world::{Regions, WorldService};

const HOUR: i64 = 3_600_000;
const ME: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn every_npc_stands_in_its_region_and_knows_real_lore() {
    let catalog = Catalog::embedded().unwrap();
    let regions = Regions::embedded().unwrap();
    let lore = crate::services::kb::Lore::embedded().unwrap();
    catalog
        .check_refs(
            |r| regions.get(r).map(|r| (r.min, r.max)),
            |d| lore.documents.iter().any(|x| x.id == d),
        )
        .unwrap();
    // Every quest giver is an NPC players can find.
    let quests = crate::services::quest::Quests::embedded().unwrap();
    for q in &quests.list {
        assert!(
            catalog.npcs.values().any(|n| n.name == q.giver),
            "quest {} is given by {:?}, who is no NPC",
            q.definition.id,
            q.giver
        );
    }
    let brenna = &catalog.npcs["brenna-hale"];
    assert_eq!(brenna.region, "hearthvale");
    assert!(brenna.description().ends_with("by night."), "one sentence");
    // A region that does not exist, a position outside it and unknown lore name the NPC's line.
    let bad = |npcs: &str| {
        let c = Catalog::parse(
            &Source::embedded("npcs.toml", npcs),
            &Source::embedded("actions.toml", crate::embedded!("npc/actions.toml").text),
        )
        .unwrap();
        c.check_refs(
            |r| regions.get(r).map(|r| (r.min, r.max)),
            |d| lore.documents.iter().any(|x| x.id == d),
        )
        .unwrap_err()
    };
    let text = crate::embedded!("npc/npcs.toml").text;
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let e = bad(&text.replacen("region = \"saltmere\"", "region = \"atlantis\"", 1));
    assert!(e.to_string().contains("atlantis"), "{e}");
    assert_eq!(
        e.line + 1,
        line("id = \"sefa-quill\""),
        "{e}: the [[npc]] line"
    );
    let e = bad(&text.replace("[3010.0, 62.0, 905.0]", "[3010.0, 62.0, 2905.0]"));
    assert!(e.to_string().contains("outside region hearthvale"), "{e}");
    assert!(e.to_string().starts_with("npcs.toml:"), "{e}");
    let e = bad(&text.replace("\"the-second-sky\"]", "\"the-third-sky\"]"));
    assert!(e.to_string().contains("the-third-sky"), "{e}");
    // A rate of 0 would leave a need at an extreme forever.
    let e = Catalog::parse(
        &Source::embedded(
            "npcs.toml",
            &text.replacen("safety = 0.06 }", "safety = 0.0 }", 1),
        ),
        &Source::embedded("actions.toml", crate::embedded!("npc/actions.toml").text),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("rates.safety must be above 0"),
        "{e}"
    );
}

#[tokio::test]
async fn bodies_are_placed_in_the_world_once_and_cannot_be_moved_or_removed() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let catalog = Catalog::embedded().unwrap();
    let regions = Arc::new(Regions::embedded().unwrap());
    let replica = || {
        let (calls, _bus) = Bus::connected();
        WorldService::new(
            Arc::clone(&store),
            Arc::clone(&regions),
            calls.from(WORLD_SERVICE),
        )
        .with_placed(catalog.bodies())
    };
    let (a, b) = (replica(), replica());
    let hearth = catalog.in_region("hearthvale").count() as u32;
    // Two replicas seed at once; then a third starts (a restart): one body each.
    async fn region(w: &WorldService) -> Result<GetRegionResponse, Status> {
        w.get_region(
            player(ME),
            GetRegionRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
    }
    let (ra, rb) = tokio::join!(region(&a), region(&b));
    assert_eq!(ra.unwrap().entity_count, hearth);
    assert_eq!(rb.unwrap().entity_count, hearth);
    assert_eq!(region(&replica()).await.unwrap().entity_count, hearth);
    // A player's box query over Hearth finds Brenna at the gatehouse.
    let v = |x, y, z| Some(Vec3 { x, y, z });
    let found = replica()
        .query_entities(
            player(ME),
            QueryEntitiesRequest {
                region_id: "hearthvale".into(),
                within: Some(Bounds {
                    min: v(2900.0, -20.0, 800.0),
                    max: v(3100.0, 320.0, 1000.0),
                }),
                kind: "npc".into(),
                ..QueryEntitiesRequest::default()
            },
        )
        .await
        .unwrap();
    let brenna = found
        .entities
        .iter()
        .find(|e| e.id == "npc-brenna-hale")
        .unwrap();
    assert_eq!(brenna.attributes["name"], "Brenna Hale");
    // A game server can neither move nor remove her, nor put a second Brenna elsewhere.
    let mut moved = brenna.clone();
    for (region, x) in [("hearthvale", 2100.0), ("saltmere", 100.0)] {
        moved.region_id = region.into();
        moved.position = v(x, 0.0, 100.0);
        let e = a
            .upsert_entity(
                service("gs"),
                UpsertEntityRequest {
                    entity: Some(moved.clone()),
                    expected_version: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    let e = a
        .remove_entity(
            service("gs"),
            RemoveEntityRequest {
                region_id: "hearthvale".into(),
                entity_id: "npc-brenna-hale".into(),
                expected_version: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(region(&b).await.unwrap().entity_count, hearth);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(400))]

    /// From any state, with no stimulus, every need and the mood approach their baselines
    /// without overshooting, and after long enough are within epsilon of them.
    #[test]
    fn drift_settles_at_the_baselines_without_overshooting(
        arch_i in 0usize..5,
        needs in proptest::array::uniform4(0.0f64..=1.0),
        mood in -1.0f64..=1.0,
        t1 in 0i64..(200 * HOUR),
        dt in 0i64..(200 * HOUR),
    ) {
        let catalog = Catalog::embedded().unwrap();
        let arch = catalog
            .archetypes
            .values()
            .nth(arch_i % catalog.archetypes.len())
            .unwrap();
        let mut s = State::fresh(arch, 0);
        s.needs = needs;
        s.mood = mood;
        let (a, b) = (s.at(arch, t1), s.at(arch, t1 + dt));
        let side = |x: f64, base: f64| (x - base).signum();
        let towards = |from: f64, mid: f64, to: f64, base: f64| {
            let (d0, d1, d2) = ((from - base).abs(), (mid - base).abs(), (to - base).abs());
            // Closer and closer, and on the side it started.
            d1 <= d0 + 1e-12 && d2 <= d1 + 1e-12 && (d1 < 1e-12 || side(mid, base) == side(from, base))
        };
        for (i, base) in arch.baseline.iter().enumerate() {
            proptest::prop_assert!(towards(needs[i], a.needs[i], b.needs[i], *base), "need {}", i);
        }
        let base = arch.mood_baseline;
        proptest::prop_assert!(towards(mood, a.mood, b.mood, base) || (mood - base).abs() < 1e-12);
        // Long enough: every need's full distance at its rate, and 20 mood half-lives.
        let slowest = arch.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hours = (1.0 / slowest).max(20.0 * arch.mood_half_life_hours) + 1.0;
        let settled = s.at(arch, (hours * HOUR as f64) as i64);
        for (n, base) in settled.needs.iter().zip(arch.baseline) {
            proptest::prop_assert!((n - base).abs() < 1e-9);
        }
        proptest::prop_assert!((settled.mood - base).abs() < 1e-5);
    }
}
