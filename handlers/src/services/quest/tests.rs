use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use proto::aicore::payment::v1::{
    GetBalanceRequest, ListTransactionsRequest, PaymentServiceHandler as _,
};
use proto::aicore::quest::v1::QUEST_SERVICE;
use proto::{BoxFuture, Encoded, MethodDesc};

use super::*;
use crate::kit::calls::fake::Bus;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::Content as _;
use crate::kit::content::Source;
use crate::kit::context::Principal;
use crate::kit::status::Code;
use crate::kit::store::{Page, Versioned};

const ME: &str = "0123456789abcdef0123456789abcdef";

/// Three quests: a chain of two, and one behind level 2.
const FIXTURE: &str = r#"
levels = [0, 100, 250]

[[quest]]
id = "rats"
title = "Rats in the Cellar"
description = "The Golden Sheaf's cellar squeaks."
chain = "inn"
region = "hearthvale"
giver = "Maud Feverfew"
min_level = 1
reward = { currency = 300, items = ["lantern_oil"], experience = 120 }

[[quest.objective]]
id = "rats"
description = "Drive out the rats"
target = 20
on = "enemy_killed:cellar-rat"

[[quest.objective]]
id = "hole"
description = "Block the hole in the wall"
target = 1
scripted = true

[[quest]]
id = "cellar-key"
title = "The Cellar Key"
description = "Someone let the rats in."
chain = "inn"
region = "hearthvale"
giver = "Maud Feverfew"
min_level = 1
prerequisites = ["rats"]
reward = { currency = 0, experience = 50 }

[[quest.objective]]
id = "find"
description = "Find who has the key"
target = 1
scripted = true

[[quest]]
id = "veteran"
title = "A Veteran's Errand"
description = "Only for the seasoned."
chain = "guard"
region = "hearthvale"
giver = "Brenna Hale"
min_level = 2
reward = { currency = 10, experience = 10 }

[[quest.objective]]
id = "go"
description = "Go"
target = 1
scripted = true
"#;

/// A store whose quest-record writes fail while `down` is set: a process dying between the
/// credit and the record.
struct Flaky {
    inner: Arc<dyn Store>,
    down: AtomicBool,
}

#[async_trait]
impl Store for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, StoreError> {
        if key.starts_with("quest.p.") && self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk gone".into()));
        }
        self.inner.put(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError> {
        self.inner.delete(key, expected).await
    }
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.inner.list(prefix, after, limit).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }
    fn backend(&self) -> &'static str {
        "flaky"
    }
}

/// Calls from quest: payment and time are the real services over the same store; events go to
/// the recording bus.
struct Wired {
    payment: Arc<dyn proto::Dispatch<Context, Status>>,
    time: Arc<dyn proto::Dispatch<Context, Status>>,
    bus: Arc<Bus>,
}

impl Route for Wired {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        match method.service_desc().short {
            "payment" => self.payment.call(ctx, method, proto::Codec::Proto, body),
            "time" => self.time.call(ctx, method, proto::Codec::Proto, body),
            _ => self.bus.call(ctx, method, body),
        }
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Flaky>,
    quests: QuestService,
    payment: Arc<crate::services::payment::PaymentService>,
    bus: Arc<Bus>,
}

fn world() -> World {
    world_with(FIXTURE)
}

fn world_with(fixture: &str) -> World {
    let (dir, inner) = crate::kit::testing::temp_store();
    let store = Arc::new(Flaky {
        inner,
        down: AtomicBool::new(false),
    });
    let shared: Arc<dyn Store> = store.clone();
    let payment = Arc::new(crate::services::payment::PaymentService::new(
        Arc::clone(&shared),
        Arc::new(crate::services::payment::Catalog::embedded().unwrap()),
    ));
    let time = Arc::new(crate::services::time::TimeService::new(
        Arc::clone(&shared),
        crate::services::time::ClockSettings::default(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let bus = Arc::new(Bus::default());
    let calls = Calls::new();
    calls.connect(Arc::new(Wired {
        payment: proto::aicore::payment::v1::payment_service_dispatch(Arc::clone(&payment)),
        time: proto::aicore::time::v1::time_service_dispatch(time),
        bus: Arc::clone(&bus),
    }));
    let quests = Quests::parse(&Source::embedded("fixture.toml", fixture)).unwrap();
    World {
        _dir: dir,
        quests: QuestService::new(shared, Arc::new(quests), calls.from(QUEST_SERVICE)),
        store,
        payment,
        bus,
    }
}

fn me() -> Context {
    crate::kit::testing::player(ME)
}

fn game_server() -> Context {
    Context {
        principal: Some(Principal::Service {
            name: "gs".into(),
            scopes: vec!["quest".into()].into(),
        }),
        ..Context::default()
    }
}

async fn available(w: &World) -> Vec<String> {
    w.quests
        .list_available(me(), ListAvailableRequest::default())
        .await
        .unwrap()
        .quests
        .into_iter()
        .map(|q| q.id)
        .collect()
}

async fn accept(w: &World, id: &str) -> Result<QuestProgress, Status> {
    w.quests
        .accept(
            me(),
            AcceptRequest {
                quest_id: id.into(),
                player_id: String::new(),
            },
        )
        .await
        .map(|r| r.progress.unwrap())
}

async fn progress(
    w: &World,
    id: &str,
    objective: &str,
    amount: u32,
) -> Result<QuestProgress, Status> {
    w.quests
        .progress(
            game_server(),
            ProgressRequest {
                quest_id: id.into(),
                objective_id: objective.into(),
                amount,
                player_id: ME.into(),
            },
        )
        .await
        .map(|r| r.progress.unwrap())
}

async fn complete(w: &World, id: &str) -> Result<CompleteResponse, Status> {
    w.quests
        .complete(
            me(),
            CompleteRequest {
                quest_id: id.into(),
                player_id: String::new(),
            },
        )
        .await
}

async fn balance(w: &World) -> (i64, usize) {
    let svc = Context {
        principal: Some(Principal::Service {
            name: "t".into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    };
    let b = w
        .payment
        .get_balance(
            svc.clone(),
            GetBalanceRequest {
                player_id: ME.into(),
            },
        )
        .await
        .unwrap()
        .balance;
    let txs = w
        .payment
        .list_transactions(
            svc,
            ListTransactionsRequest {
                player_id: ME.into(),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .transactions
        .len();
    (b, txs)
}

#[test]
fn the_shipped_quests_load_and_bad_files_name_the_line() {
    let q = Quests::embedded().unwrap();
    assert!(!q.list.is_empty());
    let cycle = FIXTURE.replace(
        "reward = { currency = 300,",
        "prerequisites = [\"cellar-key\"]\nreward = { currency = 300,",
    );
    let e = Quests::parse(&Source::embedded("f.toml", &cycle)).unwrap_err();
    assert!(e.message.contains("lead back"), "{e}");
    let unknown = FIXTURE.replace("[\"rats\"]", "[\"nope\"]");
    let e = Quests::parse(&Source::embedded("f.toml", &unknown)).unwrap_err();
    assert!(e.message.contains("\"nope\""), "{e}");
    assert_eq!(e.line, 26, "the cellar-key quest's [[quest]] line: {e}");
    let bad_target = FIXTURE.replace("target = 20", "target = 0");
    let e = Quests::parse(&Source::embedded("f.toml", &bad_target)).unwrap_err();
    assert!(e.message.contains("target of 1 to"), "{e}");
    let bad_levels = FIXTURE.replace("[0, 100, 250]", "[0, 100, 100]");
    let e = Quests::parse(&Source::embedded("f.toml", &bad_levels)).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let fixture = Quests::parse(&Source::embedded("f.toml", FIXTURE)).unwrap();
    let e = fixture
        .check_refs(|s| s != "lantern_oil", |_| true)
        .unwrap_err();
    assert!(e.message.contains("lantern_oil"), "{e}");
    assert_eq!(
        (
            fixture.level_for(0),
            fixture.level_for(99),
            fixture.level_for(100),
            fixture.level_for(10_000)
        ),
        (1, 1, 2, 3)
    );
}

#[tokio::test]
async fn a_chain_opens_as_quests_complete_and_pays_once() {
    let w = world();
    assert_eq!(available(&w).await, ["rats"]);
    let e = accept(&w, "cellar-key").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("rats"), "{e:?}");
    assert_eq!(
        accept(&w, "veteran").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let p = accept(&w, "rats").await.unwrap();
    assert_eq!(p.status, QuestStatus::Active as i32);
    assert_eq!(
        accept(&w, "rats").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert!(
        available(&w).await.is_empty(),
        "an active quest is not offered again"
    );

    // Too early.
    progress(&w, "rats", "rats", 5).await.unwrap();
    let e = complete(&w, "rats").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("5 of 20"), "{e:?}");
    // Clamped at the target.
    let p = progress(&w, "rats", "rats", 500).await.unwrap();
    assert_eq!(p.objectives["rats"], 20);
    assert_eq!(
        progress(&w, "rats", "nope", 1).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        progress(&w, "rats", "hole", 0).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    progress(&w, "rats", "hole", 1).await.unwrap();

    let done = complete(&w, "rats").await.unwrap();
    assert_eq!(done.progress.unwrap().status, QuestStatus::Completed as i32);
    assert_eq!(done.reward.clone().unwrap().currency, 300);
    // Repeated: the same answer, no second credit, no second event.
    let again = complete(&w, "rats").await.unwrap();
    assert_eq!(again.reward, done.reward);
    assert_eq!(
        *w.bus.calls.lock().unwrap(),
        2,
        "announced (completed, then leveled) on the change only, not on each repeat"
    );
    assert_eq!(balance(&w).await, (300, 1));
    // The reward's items went into the inventory in the same step as the money, once.
    let svc = Context {
        principal: Some(Principal::Service {
            name: "t".into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    };
    let inventory = w
        .payment
        .get_inventory(
            svc,
            proto::aicore::payment::v1::GetInventoryRequest {
                player_id: ME.into(),
            },
        )
        .await
        .unwrap()
        .inventory
        .unwrap();
    let held: Vec<_> = inventory
        .items
        .iter()
        .map(|i| (i.sku.as_str(), i.quantity))
        .collect();
    assert_eq!(held, [("lantern_oil", 1)]);
    let events = w.bus.published.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, format!("player.{ME}"));
    assert_eq!(events[0].1, "quest.completed");
    // The event says the reward as Complete answers it: `"currency":"300"` both ways.
    let completed: proto::aicore::quest::v1::QuestCompleted = w.bus.payload(0);
    assert_eq!(completed.reward, done.reward);
    assert_eq!(events[0].2["reward"]["currency"], "300");
    assert_eq!(
        events[0].2["reward"]["items"],
        serde_json::json!(["lantern_oil"])
    );
    assert_eq!(events[0].2["reward"]["experience"], 120.0);
    assert_eq!(completed.level, 2);
    assert_eq!(completed.quest_id, "rats");
    assert_eq!(events[1].0, format!("player.{ME}"));
    let leveled: proto::aicore::quest::v1::PlayerLeveled = w.bus.payload(1);
    assert_eq!((leveled.old_level, leveled.new_level), (1, 2));
    assert_eq!(leveled.quest_id, "rats");

    // The next in the chain, and level 2 (120 experience) opens the veteran's errand.
    assert_eq!(available(&w).await, ["cellar-key", "veteran"]);
    let log = w
        .quests
        .get_log(me(), GetLogRequest::default())
        .await
        .unwrap()
        .quests;
    assert_eq!(log.len(), 1);
    assert!(log[0].completed_game_time_ms >= log[0].accepted_game_time_ms);
    // Wall-clock times beside the game's: `...AtMs` is Unix ms everywhere.
    let now = crate::kit::clock::now_ms() as i64;
    assert!(
        (now - 60_000..=now).contains(&log[0].accepted_at_ms),
        "{:?}",
        log[0]
    );
    assert!(log[0].completed_at_ms >= log[0].accepted_at_ms);
}

#[tokio::test]
async fn twenty_parallel_progress_calls_add_up_exactly() {
    let w = world();
    accept(&w, "rats").await.unwrap();
    let calls = (0..20).map(|_| progress(&w, "rats", "rats", 1));
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    let log = w
        .quests
        .get_log(me(), GetLogRequest::default())
        .await
        .unwrap()
        .quests;
    assert_eq!(log[0].objectives["rats"], 20);
}

#[tokio::test]
async fn a_crash_between_the_credit_and_the_record_still_pays_once() {
    let w = world();
    accept(&w, "rats").await.unwrap();
    progress(&w, "rats", "rats", 20).await.unwrap();
    progress(&w, "rats", "hole", 1).await.unwrap();
    w.store.down.store(true, Ordering::SeqCst);
    let e = complete(&w, "rats").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(balance(&w).await, (300, 1), "the credit went through");
    w.store.down.store(false, Ordering::SeqCst);
    let done = complete(&w, "rats").await.unwrap();
    let again = complete(&w, "rats").await.unwrap();
    assert_eq!(balance(&w).await, (300, 1), "and only once");
    assert_eq!((done.levels_gained, again.levels_gained), (1, 1));
    assert_eq!(again.progression.unwrap().experience, 120, "granted once");
    assert_eq!(
        w.bus.events(),
        [
            (format!("player.{ME}"), "quest.completed".to_owned()),
            (format!("player.{ME}"), "player.leveled".to_owned()),
        ]
    );
}

#[tokio::test]
async fn abandoned_quests_can_be_taken_again_from_the_start() {
    let w = world();
    accept(&w, "rats").await.unwrap();
    progress(&w, "rats", "rats", 7).await.unwrap();
    let a = w
        .quests
        .abandon(
            me(),
            AbandonRequest {
                quest_id: "rats".into(),
                player_id: String::new(),
                accepted_with_key: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(a.progress.unwrap().status, QuestStatus::Abandoned as i32);
    assert_eq!(
        progress(&w, "rats", "rats", 1).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        complete(&w, "rats").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(available(&w).await, ["rats"]);
    let p = accept(&w, "rats").await.unwrap();
    assert_eq!(p.objectives["rats"], 0);
}

#[tokio::test]
async fn a_player_acts_only_for_themselves() {
    let w = world();
    let other = w
        .quests
        .accept(
            me(),
            AcceptRequest {
                quest_id: "rats".into(),
                player_id: "ffffffffffffffffffffffffffffffff".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert_eq!(
        accept(&w, "no-such-quest").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn one_game_event_advances_once_though_retried_and_accept_retries_are_answered() {
    let w = world();
    let keyed = |key: &str| Context {
        idempotency_key: Some(key.into()),
        ..game_server()
    };
    let mut ctx = keyed("accept-1");
    ctx.principal = me().principal;
    let first = w
        .quests
        .accept(
            ctx.clone(),
            AcceptRequest {
                quest_id: "rats".into(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    // The same acceptance retried is answered; a new one is refused (already active).
    let again = w
        .quests
        .accept(
            ctx,
            AcceptRequest {
                quest_id: "rats".into(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.progress, again.progress);
    assert_eq!(
        accept(&w, "rats").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let advance = |amount| AdvanceRequest {
        event: "enemy_killed".into(),
        target: "cellar-rat".into(),
        amount,
        player_id: ME.into(),
    };
    let r = w.quests.advance(keyed("ev-1"), advance(3)).await.unwrap();
    assert_eq!(r.advanced[0].objectives["rats"], 3);
    let r = w.quests.advance(keyed("ev-1"), advance(3)).await.unwrap();
    assert_eq!(r.advanced[0].objectives["rats"], 3, "the same event, once");
    let r = w.quests.advance(keyed("ev-2"), advance(0)).await.unwrap();
    assert_eq!(r.advanced[0].objectives["rats"], 4, "0 means 1");
    let none = w
        .quests
        .advance(
            keyed("ev-3"),
            AdvanceRequest {
                target: "wolf".into(),
                ..advance(1)
            },
        )
        .await
        .unwrap();
    assert!(none.advanced.is_empty());
    // Abandon that names another acceptance's key changes nothing.
    let mut undo = keyed("someone-else");
    undo.principal = me().principal;
    let e = w
        .quests
        .abandon(
            undo,
            AbandonRequest {
                quest_id: "rats".into(),
                player_id: String::new(),
                accepted_with_key: "not-accept-1".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

mod log;
