//! Content text served in the player's language, through the real services over one store:
//! settings says the language; quest, payment and world serve their text in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::npc::v1::{GetNpcRequest, ListNpcsRequest, NpcServiceHandler as _};
use proto::aicore::payment::v1::{
    GetInventoryRequest, GrantRequest, ItemGrant, ListCatalogRequest, PaymentServiceHandler as _,
};
use proto::aicore::quest::v1::{
    AcceptRequest, AdvanceRequest, CompleteRequest, GetLogRequest, GetQuestRequest,
    ListAvailableRequest, QuestCompleted, QuestServiceHandler as _,
};
use proto::aicore::settings::v1::{
    GetRequest, SettingsPatch, SettingsServiceHandler as _, UpdateRequest,
};
use proto::aicore::world::v1::{GetRegionRequest, ListRegionsRequest, WorldServiceHandler as _};
use proto::{BoxFuture, Encoded, MethodDesc};

use super::*;
use crate::kit::calls::fake::Bus;
use crate::kit::calls::{Calls, Route};
use crate::kit::context::{Context, Principal};
use crate::kit::status::{Code, Status};
use crate::kit::testing::{keyed, player, service};
use crate::services::{npc, payment, quest, settings, time, world};

const GERMAN: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";

type Dispatcher = Arc<dyn proto::Dispatch<Context, Status>>;

/// Calls between the services, by service; events go to the recording bus.
struct Wired(HashMap<&'static str, Dispatcher>, Arc<Bus>);

impl Route for Wired {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        match self.0.get(method.service_desc().short) {
            Some(d) => d.call(ctx, method, proto::Codec::Proto, body),
            None => self.1.call(ctx, method, body),
        }
    }
}

struct Game {
    _dir: tempfile::TempDir,
    bus: Arc<Bus>,
    texts: Arc<crate::kit::l10n::Texts>,
    settings: Arc<settings::SettingsService>,
    quest: Arc<quest::QuestService>,
    payment: Arc<payment::PaymentService>,
    world: Arc<world::WorldService>,
    npc: Arc<npc::NpcService>,
}

fn game() -> Game {
    use proto::aicore::{npc as n, payment as p, quest as q, settings as s, time as t, world as w};
    let content = GameContent::load(&ContentPaths::default()).unwrap();
    let texts = content.locales.texts();
    let (dir, store) = crate::kit::testing::temp_store();
    let calls = Calls::new();
    let settings = Arc::new(settings::SettingsService::new(
        Arc::clone(&store),
        content.locales.list(),
    ));
    let payment = Arc::new(
        payment::PaymentService::new(Arc::clone(&store), Arc::new(content.prices))
            .with_calls(calls.from(p::v1::PAYMENT_SERVICE))
            .with_texts(Arc::clone(&texts)),
    );
    let time = Arc::new(time::TimeService::new(
        Arc::clone(&store),
        time::ClockSettings::default(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let quest = Arc::new(
        quest::QuestService::new(
            Arc::clone(&store),
            Arc::new(content.quests),
            calls.from(q::v1::QUEST_SERVICE),
        )
        .with_texts(Arc::clone(&texts)),
    );
    let world = Arc::new(
        world::WorldService::new(
            Arc::clone(&store),
            Arc::new(content.regions),
            calls.from(w::v1::WORLD_SERVICE),
        )
        .with_texts(Arc::clone(&texts)),
    );
    let npc = Arc::new(
        npc::NpcService::new(
            Arc::clone(&store),
            Arc::new(content.npcs),
            calls.from(n::v1::NPC_SERVICE),
        )
        .with_texts(Arc::clone(&texts)),
    );
    let mut routes: HashMap<&'static str, Dispatcher> = HashMap::new();
    routes.insert(
        "settings",
        s::v1::settings_service_dispatch(Arc::clone(&settings)),
    );
    routes.insert(
        "payment",
        p::v1::payment_service_dispatch(Arc::clone(&payment)),
    );
    routes.insert("time", t::v1::time_service_dispatch(time));
    let bus = Arc::new(Bus::default());
    calls.connect(Arc::new(Wired(routes, Arc::clone(&bus))));
    Game {
        _dir: dir,
        bus,
        texts,
        settings,
        quest,
        payment,
        world,
        npc,
    }
}

impl Game {
    async fn speak(&self, who: &str, language: &str) -> Result<(), Status> {
        self.settings
            .update(
                player(who),
                UpdateRequest {
                    patch: Some(SettingsPatch {
                        language: Some(language.into()),
                        ..SettingsPatch::default()
                    }),
                    ..UpdateRequest::default()
                },
            )
            .await
            .map(|_| ())
    }

    /// The log's first quest title, and the log's locale.
    async fn log(&self, ctx: Context) -> Result<(String, String), Status> {
        let log = self.quest.get_log(ctx, GetLogRequest::default()).await?;
        let title = log.quests[0].quest.as_ref().unwrap().title.clone();
        Ok((title, log.locale))
    }
}

fn with_header(ctx: Context, header: &str) -> Context {
    Context {
        accept_language: crate::kit::context::accept_language(header),
        ..ctx
    }
}

#[tokio::test]
async fn a_german_player_reads_german_and_a_player_with_no_setting_english() {
    let g = game();
    g.speak(GERMAN, "de-DE").await.unwrap();
    let offer = g
        .quest
        .list_available(player(GERMAN), ListAvailableRequest::default())
        .await
        .unwrap();
    assert_eq!(offer.locale, "de");
    assert_eq!(offer.quests[0].title, "Laternen am Mühlweg");
    assert_eq!(
        offer.quests[0].objectives[0].description,
        "Entzünde die Laternen am Mühlweg neu"
    );
    let locked = offer.locked[0].quest.as_ref().unwrap();
    assert!(
        !locked.title.is_empty() && !locked.title.contains("Lantern"),
        "{locked:?}"
    );
    for (who, title) in [
        (GERMAN, "Laternen am Mühlweg"),
        (OTHER, "Lanterns on the Mill Road"),
    ] {
        let taken = g
            .quest
            .accept(
                keyed(player(who), "accept-1"),
                AcceptRequest {
                    quest_id: "lanterns-on-the-mill-road".into(),
                    ..AcceptRequest::default()
                },
            )
            .await
            .unwrap();
        // Accept answers what the log would show.
        assert_eq!(taken.progress.unwrap().quest.unwrap().title, title);
    }
    let log = g
        .quest
        .get_log(player(GERMAN), GetLogRequest::default())
        .await
        .unwrap();
    assert_eq!(log.locale, "de");
    let def = log.quests[0].quest.as_ref().unwrap();
    assert!(def.description.starts_with("Seit drei Nächten"), "{def:?}");
    assert_eq!(
        def.objectives[1].description,
        "Sammle die abgeschnittenen Dochte am Fuß der Laternenpfähle ein"
    );
    // Ids, counts and rewards are the same in every language.
    assert_eq!(def.id, "lanterns-on-the-mill-road");
    assert_eq!(def.objectives[0].id, "light-lanterns");
    let one = g
        .quest
        .get_quest(
            player(GERMAN),
            GetQuestRequest {
                quest_id: "the-briar-mark".into(),
                ..GetQuestRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.locale, "de");
    assert_eq!(one.progress.unwrap().quest.unwrap().title, "Das Dornenmal");
    assert_eq!(
        g.log(player(OTHER)).await.unwrap(),
        ("Lanterns on the Mill Road".into(), "en".into())
    );

    let catalog = g
        .payment
        .list_catalog(player(GERMAN), ListCatalogRequest::default())
        .await
        .unwrap();
    assert_eq!(catalog.locale, "de");
    let oil = catalog
        .items
        .iter()
        .find(|i| i.sku == "lantern_oil")
        .unwrap();
    assert_eq!(oil.name, "Flasche Lampenöl");
    g.payment
        .grant(
            keyed(service("quest"), "grant-1"),
            GrantRequest {
                player_id: GERMAN.into(),
                items: vec![ItemGrant {
                    sku: "lantern_oil".into(),
                    quantity: 2,
                }],
                reason: "test".into(),
                ..GrantRequest::default()
            },
        )
        .await
        .unwrap();
    let held = g
        .payment
        .get_inventory(player(GERMAN), GetInventoryRequest::default())
        .await
        .unwrap();
    assert_eq!(held.locale, "de");
    assert_eq!(held.inventory.unwrap().items[0].name, "Flasche Lampenöl");

    let region = g
        .world
        .get_region(
            player(GERMAN),
            GetRegionRequest {
                region_id: "ashfen".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(region.locale, "de");
    assert_eq!(region.region.unwrap().name, "Ashfen-Sümpfe");
    let regions = g
        .world
        .list_regions(player(OTHER), ListRegionsRequest::default())
        .await
        .unwrap();
    assert_eq!(regions.locale, "en");
    assert!(regions.regions.iter().any(|r| r.name == "Ashfen Marsh"));
    let here = g
        .npc
        .list_npcs(
            player(GERMAN),
            ListNpcsRequest {
                region_id: "dunmar".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(here.locale, "de");
    let saffa = &here.npcs[0];
    assert_eq!(saffa.name, "Mutter Saffa");
    assert!(
        saffa
            .description
            .starts_with("Mutter Saffa ist die Karawanenmutter")
    );
    let brenna = g
        .npc
        .get_npc(
            player(OTHER),
            GetNpcRequest {
                npc_id: "brenna-hale".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(brenna.locale, "en");
    assert_eq!(brenna.npc.unwrap().name, "Brenna Hale");
    // Everything German was in German: nothing fell back.
    assert_eq!(g.texts.fallbacks("de", "quest"), 0);
    assert_eq!(g.texts.fallbacks("de", "item"), 0);
    assert_eq!(g.texts.fallbacks("de", "npc"), 0);
}

#[tokio::test]
async fn the_quest_completed_event_on_a_player_s_topic_is_in_their_language() {
    let g = game();
    g.speak(GERMAN, "de").await.unwrap();
    for (i, (who, title, locale)) in [
        (GERMAN, "Laternen am Mühlweg", "de"),
        (OTHER, "Lanterns on the Mill Road", "en"),
    ]
    .into_iter()
    .enumerate()
    {
        let quest_id = "lanterns-on-the-mill-road";
        g.quest
            .accept(
                keyed(player(who), &format!("accept-{who}")),
                AcceptRequest {
                    quest_id: quest_id.into(),
                    ..AcceptRequest::default()
                },
            )
            .await
            .unwrap();
        for (event, target, amount) in [
            ("object_interacted", "mill-road-lantern", 6),
            ("item_collected", "cut-wick", 3),
        ] {
            g.quest
                .advance(
                    keyed(service("gs"), &format!("{who}-{target}")),
                    AdvanceRequest {
                        event: event.into(),
                        target: target.into(),
                        amount,
                        player_id: who.into(),
                    },
                )
                .await
                .unwrap();
        }
        g.quest
            .complete(
                keyed(player(who), &format!("complete-{who}")),
                CompleteRequest {
                    quest_id: quest_id.into(),
                    ..CompleteRequest::default()
                },
            )
            .await
            .unwrap();
        let published = g.bus.published.lock().unwrap().clone();
        let at = published
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 == format!("player.{who}") && e.1 == "quest.completed")
            .map(|(n, _)| n)
            .next_back()
            .unwrap_or_else(|| panic!("no quest.completed for player {i}: {published:?}"));
        let done: QuestCompleted = g.bus.payload(at);
        assert_eq!((done.title.as_str(), done.locale.as_str()), (title, locale));
    }
}

#[tokio::test]
async fn the_request_s_language_serves_a_player_who_chose_none() {
    let g = game();
    let catalog = g
        .payment
        .list_catalog(
            with_header(player(OTHER), "fr-CA, fr;q=0.9, en;q=0.5"),
            ListCatalogRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(catalog.locale, "fr");
    let oil = catalog
        .items
        .iter()
        .find(|i| i.sku == "lantern_oil")
        .unwrap();
    assert_eq!(oil.name, "Flasque d'huile de lampe");
    // A language the content has no text in is English, counted once per text served.
    let before = g.texts.fallbacks("ja", "item");
    let japanese = g
        .payment
        .list_catalog(
            with_header(player(OTHER), "ja"),
            ListCatalogRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(japanese.locale, "ja");
    assert_eq!(
        japanese
            .items
            .iter()
            .find(|i| i.sku == "lantern_oil")
            .unwrap()
            .name,
        "Flask of Lantern Oil"
    );
    assert_eq!(
        g.texts.fallbacks("ja", "item") - before,
        2 * japanese.items.len() as u64
    );
    // The player's own choice wins over the header.
    g.speak(OTHER, "de").await.unwrap();
    let catalog = g
        .payment
        .list_catalog(
            with_header(player(OTHER), "fr"),
            ListCatalogRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(catalog.locale, "de");
}

#[tokio::test]
async fn nobody_reads_in_another_player_s_language_or_reads_their_settings() {
    let g = game();
    g.speak(GERMAN, "de").await.unwrap();
    for who in [GERMAN, OTHER] {
        g.quest
            .accept(
                keyed(player(who), "accept-1"),
                AcceptRequest {
                    quest_id: "herring-and-hearsay".into(),
                    ..AcceptRequest::default()
                },
            )
            .await
            .unwrap();
    }
    // Another player's log, or settings, are refused.
    let theirs = g
        .quest
        .get_log(
            player(OTHER),
            GetLogRequest {
                player_id: GERMAN.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::PermissionDenied);
    let settings = g
        .settings
        .get(
            player(OTHER),
            GetRequest {
                player_id: GERMAN.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(settings.code(), Code::PermissionDenied);
    // A game server reading a log reads it in that player's language, never its own caller's.
    let for_player = |id: &str| GetLogRequest {
        player_id: id.into(),
    };
    let log = g
        .quest
        .get_log(service("gs"), for_player(OTHER))
        .await
        .unwrap();
    assert_eq!(log.locale, "en");
    let log = g
        .quest
        .get_log(with_header(service("gs"), "de"), for_player(GERMAN))
        .await
        .unwrap();
    assert_eq!(log.locale, "de");
    assert_eq!(
        log.quests[0].quest.as_ref().unwrap().title,
        "Hering und Hörensagen"
    );
    // A language that is no tag (a path, 10 KB of it) is refused by settings and read as
    // English from a header; the log still answers.
    let huge = "de-".to_owned() + &"a".repeat(10 * 1024);
    for bad in ["../../etc/passwd", "../de", huge.as_str()] {
        let e = g.speak(OTHER, bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:.40}");
        let header = with_header(player(OTHER), bad);
        assert_eq!(g.log(header).await.unwrap().1, "en", "{bad:.40}");
    }
    // Another service's call is English (models are grounded in the source text), unless it
    // is the facade, which passes on the language it settled for the player's view.
    let chained = |caller: &'static str| Context {
        principal: Some(Principal::Service {
            name: caller.into(),
            scopes: vec![].into(),
        }),
        chain: vec![caller],
        origin: Some(Principal::Player {
            player_id: GERMAN.into(),
        }),
        accept_language: Some("de".into()),
        ..Context::default()
    };
    let from_npc = g
        .quest
        .get_log(chained("npc"), for_player(GERMAN))
        .await
        .unwrap();
    assert_eq!(from_npc.locale, "en");
    let from_view = g
        .quest
        .get_log(chained("bodybroker"), for_player(GERMAN))
        .await
        .unwrap();
    assert_eq!(from_view.locale, "de");
}
