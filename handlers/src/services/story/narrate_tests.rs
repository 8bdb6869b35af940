//! Narrate end to end against stand-ins for the services it calls (the library ranks the shipped
//! lore with the real index): the story so far is the player's own path, the lore is retrieved
//! for it within the budget and charged to the player, and the last event lists the documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use proto::aicore::kb::v1::{GetResponse, SearchHit, SearchResponse};
use proto::aicore::llm::v1::InferStreamResponse;
use proto::aicore::quest::v1::GetLogResponse;
use proto::aicore::story::v1::STORY_SERVICE;
use proto::aicore::time::v1::NowResponse;
use proto::aicore::weather::v1::CurrentResponse;
use proto::aicore::world::v1::GetRegionResponse;
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::*;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::Content as _;
use crate::kit::context::Principal;
use crate::kit::status::Code;
use crate::kit::testing::player;
use crate::services::kb::Lore;
use crate::services::kb::index::Index;
use crate::services::llm::retrieval::{DEFAULT_BUDGET, MAX_QUERY, total_cost};

const ME: &str = "0123456789abcdef0123456789abcdef";
const YOU: &str = "fedcba9876543210fedcba9876543210";

/// Every service story calls, as story sees them.
struct Others {
    lore: Lore,
    index: Index,
    /// Each search: the query and its tags.
    searched: Mutex<Vec<(String, Vec<String>)>>,
    /// Whose quest log was read.
    logs_read: Mutex<Vec<String>>,
    /// Each model call: the request and who pays for it.
    inferred: Mutex<Vec<(InferRequest, Option<Principal>)>>,
}

impl Others {
    fn new() -> Self {
        let lore = Lore::embedded().unwrap();
        let mut index = Index::default();
        for d in &lore.documents {
            index.upsert(&d.id, &d.title, &d.body, &d.tags, 1);
        }
        Others {
            lore,
            index,
            searched: Mutex::default(),
            logs_read: Mutex::default(),
            inferred: Mutex::default(),
        }
    }
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
            "GetRegion" => {
                let req: GetRegionRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                let regions = crate::services::world::Regions::embedded().unwrap();
                reply(&GetRegionResponse {
                    region: Some(regions.get(&req.region_id).unwrap().region.clone()),
                    entity_count: 0,
                    ..Default::default()
                })
            }
            "Current" => reply(&CurrentResponse {
                weather: Some(proto::aicore::weather::v1::Weather {
                    region_id: "ashfen".into(),
                    condition: proto::aicore::weather::v1::Condition::Fog as i32,
                    ..Default::default()
                }),
            }),
            "Now" => reply(&NowResponse {
                hour: 20,
                ..NowResponse::default()
            }),
            "GetLog" => {
                let req: GetLogRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                self.logs_read.lock().unwrap().push(req.player_id);
                reply(&GetLogResponse::default())
            }
            "Search" => {
                let req: SearchRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                // The library's own limit: a longer query is refused.
                assert!(req.query.chars().count() <= 500, "{}", req.query);
                self.searched
                    .lock()
                    .unwrap()
                    .push((req.query.clone(), req.tags.clone()));
                let hits = self
                    .index
                    .search(&req.query, &req.tags, req.limit as usize)
                    .into_iter()
                    .filter_map(|s| self.index.entry(s.slot))
                    .map(|e| SearchHit {
                        id: e.id.clone(),
                        title: e.title.clone(),
                        ..SearchHit::default()
                    })
                    .collect();
                reply(&SearchResponse { hits })
            }
            "Get" => {
                let req: GetRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                reply(&GetResponse {
                    document: self.lore.documents.iter().find(|d| d.id == req.id).cloned(),
                })
            }
            "InferStream" => {
                let req: InferRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                self.inferred
                    .lock()
                    .unwrap()
                    .push((req, ctx.payer().cloned()));
                let items: Vec<Result<Bytes, Status>> = ["Fog. ", "The bell.", ""]
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        proto::codec::encode(
                            Codec::Proto,
                            &InferStreamResponse {
                                delta: (*d).into(),
                                finish_reason: if i == 2 { "stop".into() } else { String::new() },
                                ..InferStreamResponse::default()
                            },
                        )
                        .map_err(Status::from)
                    })
                    .collect();
                Ok(Encoded::Stream(Box::pin(futures_util::stream::iter(items))))
            }
            other => panic!("story does not call {other}"),
        };
        Box::pin(async move { out })
    }
}

fn story(budget: u32) -> (tempfile::TempDir, StoryService, Arc<Others>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let others = Arc::new(Others::new());
    let calls = Calls::new();
    calls.connect(Arc::clone(&others) as Arc<dyn Route>);
    let svc = StoryService::new(
        store,
        Arc::new(Arcs::embedded().unwrap()),
        Arc::new(Quests::embedded().unwrap()),
        calls.from(STORY_SERVICE),
    )
    .with_lore_budget(budget);
    (dir, svc, others)
}

async fn advance(svc: &StoryService, who: &str, choice: &str) {
    svc.advance_arc(
        player(who),
        AdvanceArcRequest {
            arc_id: "the-drowned-bell".into(),
            choice: choice.into(),
            expected_version: None,
            player_id: String::new(),
        },
    )
    .await
    .unwrap();
}

async fn narrate(
    svc: &StoryService,
    ctx: Context,
    cue: &str,
    player_id: &str,
) -> Result<Vec<NarrateResponse>, Status> {
    let stream = svc
        .narrate(
            ctx,
            NarrateRequest {
                arc_id: "the-drowned-bell".into(),
                cue: cue.into(),
                max_tokens: 0,
                player_id: player_id.into(),
            },
        )
        .await?;
    Ok(stream.map(|r| r.unwrap()).collect().await)
}

#[tokio::test]
async fn narration_tells_the_story_so_far_with_lore_within_budget_and_lists_it() {
    let (_d, svc, others) = story(DEFAULT_BUDGET);
    advance(&svc, ME, "follow-the-lights").await;
    advance(&svc, ME, "descend-the-stair").await;
    // Another player went another way: none of it reaches my narration.
    advance(&svc, YOU, "find-the-ferrywoman").await;
    others.logs_read.lock().unwrap().clear();
    let events = narrate(&svc, player(ME), "the punt scrapes the jetty", "")
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.finish_reason, "stop");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.documents.is_empty())
    );

    let (req, payer) = others.inferred.lock().unwrap()[0].clone();
    // The model's tokens, lore included, are the player's to pay.
    assert_eq!(
        payer,
        Some(Principal::Player {
            player_id: ME.into()
        })
    );
    let lore = req.grounding.clone().unwrap().lore;
    let ids: Vec<String> = lore.iter().map(|p| p.document.clone()).collect();
    assert!(!ids.is_empty());
    assert_eq!(last.documents, ids, "the last event lists what was used");
    assert!(total_cost(&lore) <= DEFAULT_BUDGET);
    let ashfen = Lore::embedded().unwrap();
    for id in &ids {
        let doc = ashfen.documents.iter().find(|d| &d.id == id).unwrap();
        assert!(
            doc.tags.iter().any(|t| t == "ashfen"),
            "{id}: the arc's region"
        );
    }
    let (_, tags) = others.searched.lock().unwrap()[0].clone();
    assert_eq!(tags, ["ashfen"]);
    // A real model's prompt: the lore under its heading, the story so far in the order walked.
    let prompt: String = crate::services::llm::openai::prompt(&req)
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(prompt.contains("\nLore:\n- "), "{prompt}");
    for p in &lore {
        assert!(
            prompt.contains(&crate::services::llm::retrieval::line(p)),
            "{prompt}"
        );
    }
    let arc = svc.arcs.get("the-drowned-bell").unwrap();
    let beat = |id: &str| arc.beats[id].text.clone();
    let path = format!(
        "The story so far:\n1. {}\n2. {}\n3. {}\nNow: the punt scrapes the jetty",
        beat("bell-in-the-fog"),
        beat("the-reed-island"),
        beat("the-flooded-nave")
    );
    assert!(prompt.contains(&path), "{prompt}");
    assert!(!prompt.contains(&beat("the-ferry-landing")), "not my path");
    // Only my own log was read.
    assert_eq!(*others.logs_read.lock().unwrap(), [ME]);
}

#[tokio::test]
async fn a_player_cannot_read_another_players_story_or_overrun_the_budget() {
    let (_d, svc, others) = story(DEFAULT_BUDGET);
    advance(&svc, YOU, "find-the-ferrywoman").await;
    // Another player's arc: refused before anything is read.
    let e = narrate(&svc, player(ME), "", YOU).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(others.searched.lock().unwrap().is_empty());
    // A cue past the limit is refused; one at the limit, all lore words, asks the library a
    // query it takes and gets no more lore than the budget.
    let e = narrate(&svc, player(ME), &"a".repeat(301), "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let greedy = "abbey bell wren fen lantern eel ".repeat(9);
    let greedy = greedy.trim();
    assert!(greedy.chars().count() <= 300);
    let events = narrate(&svc, player(ME), greedy, "").await.unwrap();
    let (query, _) = others.searched.lock().unwrap()[0].clone();
    assert!(query.chars().count() <= MAX_QUERY);
    let (req, _) = others.inferred.lock().unwrap()[0].clone();
    let lore = req.grounding.unwrap().lore;
    assert!(total_cost(&lore) <= DEFAULT_BUDGET);
    assert_eq!(
        events.last().unwrap().documents.len(),
        lore.len(),
        "every document used is listed"
    );
    // My story so far is my own: the start, not the other player's ferry landing.
    let arc = svc.arcs.get("the-drowned-bell").unwrap();
    let user = &req.messages[1].content;
    assert!(user.contains(&arc.beats["bell-in-the-fog"].text), "{user}");
    assert!(
        !user.contains(&arc.beats["the-ferry-landing"].text),
        "{user}"
    );

    // A small budget is kept to; none asks the library nothing.
    let (_d, small, others) = story(60);
    narrate(&small, player(ME), greedy, "").await.unwrap();
    let (req, _) = others.inferred.lock().unwrap()[0].clone();
    assert!(total_cost(&req.grounding.unwrap().lore) <= 60);
    let (_d, none, others) = story(0);
    let events = narrate(&none, player(ME), greedy, "").await.unwrap();
    assert!(others.searched.lock().unwrap().is_empty());
    assert!(events.last().unwrap().documents.is_empty());
}
