//! Players and NPCs: content, bodies in the world, ListNpcs, Interact, Gift, Talk, the bound on
//! each player's influence, and drift.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use proto::aicore::events::v1::{PublishRequest, PublishResponse};
use proto::aicore::kb::v1::{
    Document, GetRequest, GetResponse, SearchHit, SearchRequest, SearchResponse,
};
use proto::aicore::llm::v1::InferStreamResponse;
use proto::aicore::npc::v1::NPC_SERVICE;
use proto::aicore::payment::v1::ConsumeResponse;
use proto::aicore::quest::v1::AdvanceResponse;
use proto::aicore::time::v1::NowResponse;
use proto::aicore::world::v1::GetRegionResponse;
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::*;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::Content as _;
use crate::kit::context::Principal;
use crate::kit::testing::{keyed, player, service};
use crate::services::world::Regions;

const HOUR: i64 = 3_600_000;
pub(super) const ME: &str = "0123456789abcdef0123456789abcdef";
pub(super) const YOU: &str = "fedcba9876543210fedcba9876543210";

/// Every service npc calls, as npc sees them.
#[derive(Default)]
pub(super) struct Others {
    pub(super) game_ms: AtomicI64,
    /// (player, sku) -> count held.
    pub(super) held: Mutex<HashMap<(String, String), u32>>,
    /// Consume keys applied.
    pub(super) consumed: Mutex<Vec<String>>,
    /// (player, event, target, key) of each Advance.
    pub(super) advanced: Mutex<Vec<(String, String, String, String)>>,
    /// The prompt and payer of each model call.
    pub(super) prompts: Mutex<Vec<(String, Option<Principal>)>>,
    /// The weather and season each model call was grounded in ("rain/winter").
    pub(super) grounded_weather: Mutex<Vec<String>>,
    /// Each event published: the request, its idempotency key and who pays for it.
    pub(super) published: Mutex<Vec<(PublishRequest, String, Option<Principal>)>>,
    /// When set, the model refuses (a spend cap reached).
    pub(super) model_refuses: std::sync::atomic::AtomicBool,
    /// Each library search: the query and the tags.
    pub(super) searched: Mutex<Vec<(String, Vec<String>)>>,
    /// The documents and tokens of the lore each model call was grounded in.
    pub(super) lore: Mutex<Vec<(Vec<String>, u32)>>,
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
            "Publish" => {
                let req: PublishRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                crate::kit::calls::fake::check_declared(&req);
                self.published.lock().unwrap().push((
                    req,
                    ctx.idempotency_key.clone().unwrap(),
                    ctx.payer().cloned(),
                ));
                reply(&PublishResponse::default())
            }
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
                        ..Default::default()
                    }),
                    None => Err(Status::not_found(format!("no region {:?}", req.region_id))),
                }
            }
            "Search" => {
                let req: SearchRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                self.searched
                    .lock()
                    .unwrap()
                    .push((req.query.clone(), req.tags.clone()));
                // The region's lore the library ranks first, one the NPC also knows.
                reply(&SearchResponse {
                    hits: ["windmills-of-the-vale", "brenna-hale"]
                        .iter()
                        .map(|id| SearchHit {
                            id: (*id).into(),
                            ..SearchHit::default()
                        })
                        .collect(),
                })
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
                    return Box::pin(async { reply(&ConsumeResponse::default()) });
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
                    reply(&ConsumeResponse::default())
                }
            }
            "InferStream" if self.model_refuses.load(Ordering::SeqCst) => Err(Status::new(
                Code::ResourceExhausted,
                "the daily model budget is spent",
            )),
            "InferStream" => {
                let req: InferRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                let g = req.grounding.clone().unwrap_or_default();
                self.grounded_weather
                    .lock()
                    .unwrap()
                    .push(format!("{}/{}", g.weather, g.season));
                let lore = g.lore;
                self.lore.lock().unwrap().push((
                    lore.iter().map(|p| p.document.clone()).collect(),
                    crate::services::llm::retrieval::total_cost(&lore),
                ));
                // The prompt as a model served over HTTP gets it, grounding and lore rendered.
                let text: Vec<String> = crate::services::llm::openai::prompt(&req)
                    .into_iter()
                    .map(|m| m.content)
                    .collect();
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
            "Current" => reply(&proto::aicore::weather::v1::CurrentResponse {
                weather: Some(proto::aicore::weather::v1::Weather {
                    region_id: "hearthvale".into(),
                    condition: proto::aicore::weather::v1::Condition::Rain as i32,
                    ..Default::default()
                }),
            }),
            other => panic!("npc does not call {other}"),
        };
        Box::pin(async move { out })
    }
}

pub(super) fn npcs() -> (tempfile::TempDir, NpcService, Arc<Others>) {
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

pub(super) async fn mood_of(svc: &NpcService, npc: &str) -> f64 {
    svc.get_npc(player(ME), GetNpcRequest { npc_id: npc.into() })
        .await
        .unwrap()
        .npc
        .unwrap()
        .mood
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
    // A region lists only its own: the Dunmar Expanse has its caravan-mother and no one else.
    let dunmar = list("dunmar").await.unwrap().npcs;
    let names: Vec<&str> = dunmar.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["Mother Saffa"]);
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
    // The gift tipped her from "friendly" into "warm": the region hears it once, charged to
    // the giver (the retry changed nothing and says nothing).
    let published = others.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    let (event, _, payer) = &published[0];
    assert_eq!(
        (event.topic.as_str(), event.r#type.as_str()),
        ("world.hearthvale", "npc.changed")
    );
    assert_eq!(
        payer,
        &Some(Principal::Player {
            player_id: ME.into()
        })
    );
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
