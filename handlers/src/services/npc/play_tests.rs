//! Players and NPCs: content, bodies in the world, ListNpcs, Interact, Gift, Talk, the bound on
//! each player's influence, and drift.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use proto::aicore::kb::v1::{Document, GetResponse};
use proto::aicore::llm::v1::InferStreamResponse;
use proto::aicore::npc::v1::NPC_SERVICE;
use proto::aicore::payment::v1::ConsumeResponse;
use proto::aicore::quest::v1::AdvanceResponse;
use proto::aicore::time::v1::NowResponse;
use proto::aicore::world::v1::{
    Box as Bounds, GetRegionResponse, QueryEntitiesRequest, RemoveEntityRequest,
    UpsertEntityRequest, Vec3, WORLD_SERVICE, WorldServiceHandler as _,
};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::*;
use crate::kit::calls::fake::Bus;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::{Content as _, Source};
use crate::kit::context::Principal;
use crate::kit::testing::{keyed, player, service};
use crate::services::world::{Regions, WorldService};

const HOUR: i64 = 3_600_000;
const ME: &str = "0123456789abcdef0123456789abcdef";
const YOU: &str = "fedcba9876543210fedcba9876543210";

/// Every service npc calls, as npc sees them.
#[derive(Default)]
struct Others {
    game_ms: AtomicI64,
    /// (player, sku) -> count held.
    held: Mutex<HashMap<(String, String), u32>>,
    /// Consume keys applied.
    consumed: Mutex<Vec<String>>,
    /// (player, event, target, key) of each Advance.
    advanced: Mutex<Vec<(String, String, String, String)>>,
    /// The prompt and payer of each model call.
    prompts: Mutex<Vec<(String, Option<Principal>)>>,
}

fn reply<M: prost::Message + serde::Serialize>(m: &M) -> Result<Encoded<Status>, Status> {
    proto::codec::encode(Codec::Proto, m)
        .map_err(Status::from)
        .map(Encoded::Unary)
}

impl Route for Others {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        let out = match method.name {
            "Now" => reply(&NowResponse {
                game_time_ms: self.game_ms.load(Ordering::SeqCst),
                scale: 60.0,
                ..NowResponse::default()
            }),
            "GetRegion" => {
                let req: GetRegionRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                match Regions::embedded().unwrap().get(&req.region_id) {
                    Some(r) => reply(&GetRegionResponse {
                        region: Some(r.region.clone()),
                        entity_count: 0,
                    }),
                    None => Err(Status::not_found(format!("no region {:?}", req.region_id))),
                }
            }
            "Get" => {
                let req: GetRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                reply(&GetResponse {
                    document: Some(Document {
                        id: req.id.clone(),
                        title: format!("Of {}", req.id),
                        body: format!(
                            "The first paragraph of {} tells of the Mill Road lanterns. It goes on for a while about the watch and the Vale and the roads home after dark, as lore does.\n\nA second paragraph the budget leaves out.",
                            req.id
                        ),
                        ..Document::default()
                    }),
                })
            }
            "Advance" => {
                let req: AdvanceRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                self.advanced.lock().unwrap().push((
                    req.player_id,
                    req.event,
                    req.target,
                    ctx.idempotency_key.clone().unwrap(),
                ));
                reply(&AdvanceResponse::default())
            }
            "Consume" => {
                let req: ConsumeRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                let key = ctx.idempotency_key.clone().unwrap();
                let mut consumed = self.consumed.lock().unwrap();
                if consumed.contains(&key) {
                    return Box::pin(async { reply(&ConsumeResponse {}) });
                }
                let mut held = self.held.lock().unwrap();
                let have = held.entry((req.player_id, req.sku.clone())).or_insert(0);
                if *have < req.quantity {
                    Err(Status::failed_precondition(format!(
                        "the player holds {} of {}",
                        have, req.sku
                    )))
                } else {
                    *have -= req.quantity;
                    consumed.push(key);
                    reply(&ConsumeResponse {})
                }
            }
            "InferStream" => {
                let req: InferRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                let text: Vec<String> = req.messages.into_iter().map(|m| m.content).collect();
                self.prompts
                    .lock()
                    .unwrap()
                    .push((text.join("\n"), ctx.payer().cloned()));
                let pieces = ["Evening. ", "Mind the ", "lanterns.", ""];
                let items: Vec<Result<Bytes, Status>> = pieces
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        proto::codec::encode(
                            Codec::Proto,
                            &InferStreamResponse {
                                delta: (*d).into(),
                                finish_reason: if i == pieces.len() - 1 {
                                    "stop".into()
                                } else {
                                    String::new()
                                },
                                ..InferStreamResponse::default()
                            },
                        )
                        .map_err(Status::from)
                    })
                    .collect();
                Ok(Encoded::Stream(Box::pin(futures_util::stream::iter(items))))
            }
            other => panic!("npc does not call {other}"),
        };
        Box::pin(async move { out })
    }
}

fn npcs() -> (tempfile::TempDir, NpcService, Arc<Others>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let others = Arc::new(Others::default());
    others.game_ms.store(100 * HOUR, Ordering::SeqCst);
    let calls = Calls::new();
    calls.connect(Arc::clone(&others) as Arc<dyn Route>);
    let svc = NpcService::new(
        store,
        Arc::new(Catalog::embedded().unwrap()),
        calls.from(NPC_SERVICE),
    );
    (dir, svc, others)
}

async fn interact(
    svc: &NpcService,
    ctx: Context,
    npc: &str,
    kind: InteractionKind,
) -> Result<MoodEffect, Status> {
    svc.interact(
        ctx,
        InteractRequest {
            npc_id: npc.into(),
            kind: kind as i32,
            player_id: String::new(),
        },
    )
    .await
    .map(|r| r.effect.unwrap())
}

async fn gift(svc: &NpcService, ctx: Context, sku: &str, n: u32) -> Result<MoodEffect, Status> {
    svc.gift(
        ctx,
        GiftRequest {
            npc_id: "maud-feverfew".into(),
            sku: sku.into(),
            quantity: n,
            player_id: String::new(),
        },
    )
    .await
    .map(|r| r.effect.unwrap())
}

async fn mood_of(svc: &NpcService, npc: &str) -> f64 {
    svc.get_npc(player(ME), GetNpcRequest { npc_id: npc.into() })
        .await
        .unwrap()
        .npc
        .unwrap()
        .mood
}

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
    let e = bad(&text.replace("region = \"saltmere\"", "region = \"atlantis\""));
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

#[tokio::test]
async fn list_npcs_shows_what_a_player_may_know() {
    let (_d, svc, _) = npcs();
    let list = |region: &str| {
        svc.list_npcs(
            player(ME),
            ListNpcsRequest {
                region_id: region.into(),
            },
        )
    };
    let hearth = list("hearthvale").await.unwrap().npcs;
    let brenna = hearth.iter().find(|n| n.id == "brenna-hale").unwrap();
    assert_eq!(brenna.name, "Brenna Hale");
    assert_eq!(brenna.archetype, "guard");
    assert_eq!(brenna.mood_label, "neutral");
    assert_eq!(brenna.position.as_ref().unwrap().z, 905.0);
    assert!(brenna.description.starts_with("Brenna Hale is the captain"));
    assert!(
        !brenna.description.contains("Hollow Court"),
        "first sentence only"
    );
    assert!(hearth.iter().all(|n| n.region_id == "hearthvale"));
    assert!(list("dunmar").await.unwrap().npcs.is_empty());
    assert_eq!(list("").await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(list("atlantis").await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn greetings_and_insults_move_the_mood_once_per_key() {
    let (_d, svc, _) = npcs();
    let before = mood_of(&svc, "oswin-tarrow").await;
    let hi = interact(
        &svc,
        keyed(player(ME), "k1"),
        "oswin-tarrow",
        InteractionKind::Greet,
    )
    .await
    .unwrap();
    assert!((hi.mood_delta - 0.1).abs() < 1e-9, "{hi:?}");
    assert!((hi.mood - (before + 0.1)).abs() < 1e-6);
    // A retry with the same key changes nothing more and says what the first did.
    let again = interact(
        &svc,
        keyed(player(ME), "k1"),
        "oswin-tarrow",
        InteractionKind::Greet,
    )
    .await
    .unwrap();
    assert_eq!(again.mood_delta, hi.mood_delta);
    assert!((mood_of(&svc, "oswin-tarrow").await - hi.mood).abs() < 1e-9);
    let rude = interact(&svc, player(ME), "oswin-tarrow", InteractionKind::Insult)
        .await
        .unwrap();
    assert!(rude.mood_delta < 0.0);
    // Bad input and forged players.
    let e = interact(
        &svc,
        player(ME),
        "oswin-tarrow",
        InteractionKind::Unspecified,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = interact(&svc, player(ME), "nobody", InteractionKind::Greet)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let forged = svc
        .interact(
            player(ME),
            InteractRequest {
                npc_id: "oswin-tarrow".into(),
                kind: InteractionKind::Insult as i32,
                player_id: YOU.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn one_player_spamming_insults_cannot_make_brenna_hostile() {
    let (_d, svc, others) = npcs();
    let catalog = Catalog::embedded().unwrap();
    let cap = catalog.influence_cap;
    let baseline = catalog.archetypes["guard"].mood_baseline;
    let mut lowest: f64 = 1.0;
    for i in 0..200 {
        // Every few game minutes, for days.
        others.game_ms.fetch_add(HOUR / 12, Ordering::SeqCst);
        let e = interact(&svc, player(ME), "brenna-hale", InteractionKind::Insult)
            .await
            .unwrap();
        assert_ne!(e.mood_label, "hostile", "insult {i}: {e:?}");
        lowest = lowest.min(e.mood);
        if i > 5 {
            assert!(e.limited, "insult {i} past the bound says so");
        }
    }
    assert!(lowest >= baseline - cap - 1e-9, "{lowest}");
    // Another player's greeting still counts: the bound is per player.
    let hi = interact(&svc, player(YOU), "brenna-hale", InteractionKind::Greet)
        .await
        .unwrap();
    assert!((hi.mood_delta - 0.1).abs() < 1e-9, "{hi:?}");
}

#[tokio::test]
async fn a_gift_moves_the_item_and_the_mood_once() {
    let (_d, svc, others) = npcs();
    others
        .held
        .lock()
        .unwrap()
        .insert((ME.into(), "healing-draught".into()), 2);
    let before = mood_of(&svc, "maud-feverfew").await;
    let g = gift(&svc, keyed(player(ME), "g1"), "healing-draught", 1)
        .await
        .unwrap();
    assert!((g.mood - (before + 0.35)).abs() < 1e-6, "{g:?}");
    let retry = gift(&svc, keyed(player(ME), "g1"), "healing-draught", 1)
        .await
        .unwrap();
    assert_eq!(retry, g);
    assert_eq!(
        others.held.lock().unwrap()[&(ME.into(), "healing-draught".into())],
        1,
        "consumed once"
    );
    assert!(others.consumed.lock().unwrap()[0].starts_with("npc:gift:maud-feverfew:"));
    assert!((mood_of(&svc, "maud-feverfew").await - g.mood).abs() < 1e-9);
    // What the player does not hold is refused, and the mood stays.
    let e = gift(&svc, keyed(player(YOU), "g2"), "healing-draught", 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!((mood_of(&svc, "maud-feverfew").await - g.mood).abs() < 1e-9);
    // Bad input.
    for (ctx, sku, n) in [
        (player(ME), "healing-draught", 1),
        (keyed(player(ME), "g3"), "healing-draught", 0),
        (keyed(player(ME), "g3"), "healing-draught", 100),
        (keyed(player(ME), "g3"), "Healing Draught!", 1),
    ] {
        let e = gift(&svc, ctx, sku, n).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{sku} {n}");
    }
    // Past the player's bound a gift is declined before the item moves.
    let e = gift(&svc, keyed(player(ME), "g4"), "healing-draught", 1)
        .await
        .unwrap();
    assert!(e.limited, "{e:?}");
    let e = gift(&svc, keyed(player(ME), "g5"), "healing-draught", 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.retry_after().is_some());
}

#[tokio::test]
async fn talk_streams_in_character_charges_the_player_and_advances_quests() {
    let (_d, svc, others) = npcs();
    let talk = |ctx: Context, npc: &str, text: &str| {
        svc.talk(
            ctx,
            TalkRequest {
                npc_id: npc.into(),
                text: text.into(),
                max_tokens: 0,
                player_id: String::new(),
            },
        )
    };
    let before = mood_of(&svc, "brenna-hale").await;
    let stream = talk(
        player(ME),
        "brenna-hale",
        "Who keeps putting out the lanterns?",
    )
    .await
    .unwrap();
    let events: Vec<TalkResponse> = stream.map(|r| r.unwrap()).collect().await;
    let text: String = events.iter().map(|e| e.delta.as_str()).collect();
    assert_eq!(text, "Evening. Mind the lanterns.");
    let last = events.last().unwrap();
    assert_eq!(last.finish_reason, "stop");
    assert_eq!(last.lore_used[0], "brenna-hale");
    assert!(last.mood > before, "a talk is a greeting");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.lore_used.is_empty())
    );
    let (prompt, payer) = others.prompts.lock().unwrap()[0].clone();
    assert_eq!(
        payer,
        Some(Principal::Player {
            player_id: ME.into()
        })
    );
    for part in [
        "You are Brenna Hale",
        "lamplighter's daughter",
        "Your mood: friendly",
        "Who keeps putting out the lanterns?",
        "Of brenna-hale",
        "Hearthvale",
    ] {
        assert!(prompt.contains(part), "{part} in {prompt}");
    }
    assert!(!prompt.contains("A second paragraph"), "lore within budget");
    let advanced = others.advanced.lock().unwrap().clone();
    assert_eq!(advanced.len(), 1);
    let (who, event, target, key) = &advanced[0];
    assert_eq!(
        (who.as_str(), event.as_str(), target.as_str()),
        (ME, "talked_to", "brenna-hale")
    );
    assert!(key.starts_with("npc:talk:brenna-hale:"), "{key}");
    // Bad lines, unknown NPCs and forged players.
    for text in [
        "",
        "   ",
        &"a".repeat(301),
        "hello\u{7}there",
        "line\nbreak",
    ] {
        let e = talk(player(ME), "brenna-hale", text).await.err().unwrap();
        assert_eq!(e.code(), Code::InvalidArgument, "{text:?}");
    }
    let e = talk(player(ME), "nobody", "Hello").await.err().unwrap();
    assert_eq!(e.code(), Code::NotFound);
    let forged = svc
        .talk(
            player(ME),
            TalkRequest {
                npc_id: "brenna-hale".into(),
                text: "Hello".into(),
                max_tokens: 0,
                player_id: YOU.into(),
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert_eq!(others.advanced.lock().unwrap().len(), 1);
}

#[test]
fn players_cannot_perceive_or_decide() {
    let me = Principal::Player {
        player_id: ME.into(),
    };
    for m in ["Perceive", "Decide"] {
        let desc = proto::method_by_path(&format!("/aicore.npc.v1.NpcService/{m}")).unwrap();
        let e = crate::kit::context::authorize(Some(&me), desc).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{m}");
    }
    for m in ["ListNpcs", "Talk", "Interact", "Gift", "GetNpc"] {
        let desc = proto::method_by_path(&format!("/aicore.npc.v1.NpcService/{m}")).unwrap();
        crate::kit::context::authorize(Some(&me), desc).unwrap();
    }
}

#[tokio::test]
async fn brennas_courage_returns_after_a_threat() {
    let (_d, svc, others) = npcs();
    let calm = svc
        .get_npc(
            player(ME),
            GetNpcRequest {
                npc_id: "brenna-hale".into(),
            },
        )
        .await
        .unwrap()
        .npc
        .unwrap();
    let threatened = svc
        .perceive(
            service("gs"),
            PerceiveRequest {
                npc_id: "brenna-hale".into(),
                stimuli: vec![proto::aicore::npc::v1::Stimulus {
                    kind: "threat".into(),
                    intensity: 1.0,
                    source_id: "wolf".into(),
                }],
            },
        )
        .await
        .unwrap()
        .npc
        .unwrap();
    assert!(threatened.needs.unwrap().safety > 0.7);
    others.game_ms.fetch_add(13 * HOUR, Ordering::SeqCst);
    let later = svc
        .get_npc(
            player(ME),
            GetNpcRequest {
                npc_id: "brenna-hale".into(),
            },
        )
        .await
        .unwrap()
        .npc
        .unwrap();
    assert_eq!(later.needs.unwrap().safety, calm.needs.unwrap().safety);
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
