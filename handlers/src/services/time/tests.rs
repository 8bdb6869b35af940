use std::time::Duration;

use proto::aicore::time::v1::TIME_SERVICE;

use super::scheduler::Scheduler;
use super::*;
use crate::kit::calls::Calls;
use crate::kit::calls::fake::Bus;
use crate::kit::status::Code;

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let (dir, store) = crate::kit::testing::temp_store();
    (dir, store)
}

/// Sets the clock frozen at `game_ms`.
async fn frozen_at(store: &Arc<dyn Store>, game_ms: i64) {
    let record = ClockRecord {
        anchor_real_ms: now_ms_i64(),
        anchor_game_ms: game_ms,
        scale: 0.0,
    };
    store
        .put(CLOCK_KEY, encode(&record).unwrap(), None)
        .await
        .unwrap();
}

fn service(store: &Arc<dyn Store>, scale: f64) -> TimeService {
    TimeService::new(
        Arc::clone(store),
        ClockSettings {
            epoch_ms: None,
            scale,
        },
        Arc::new(Notify::new()),
    )
}

fn svc_ctx() -> Context {
    crate::kit::testing::service("gs")
}

#[test]
fn clock_math() {
    let c = ClockRecord {
        anchor_real_ms: 1_000,
        anchor_game_ms: 50_000,
        scale: 12.0,
    };
    assert_eq!(c.game_at(1_000), 50_000);
    assert_eq!(c.game_at(2_000), 62_000);
    assert_eq!(c.real_at(62_000), Some(2_000));
    let frozen = ClockRecord { scale: 0.0, ..c };
    assert_eq!(frozen.game_at(99_999), 50_000);
    assert_eq!(frozen.real_at(60_000), None);
    let r = now_response(&c, 86_400_000 + 3_600_000 * 7 + 60_000 * 5 + 10, 0);
    assert_eq!((r.day, r.hour, r.minute), (2, 7, 5));
    assert_eq!(
        (r.month.as_str(), r.season.as_str()),
        ("Frostwane", "winter")
    );
    // Day 166 of the year is in Haymoon, in summer; day 361 is the first of the next year.
    let r = now_response(&c, 86_400_000 * 165, 0);
    assert_eq!(
        (r.day, r.month.as_str(), r.season.as_str()),
        (166, "Haymoon", "summer")
    );
    let r = now_response(&c, 86_400_000 * 360, 0);
    assert_eq!(
        (r.day, r.month.as_str(), r.season.as_str()),
        (361, "Frostwane", "winter")
    );
}

#[tokio::test]
async fn set_scale_re_anchors_so_game_time_never_jumps() {
    let (_d, store) = store();
    let svc = service(&store, 1000.0);
    let before = svc.now(Context::default(), NowRequest {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let set = svc
        .set_scale(svc_ctx(), SetScaleRequest { scale: 0.0 })
        .await
        .unwrap()
        .now
        .unwrap();
    assert!(
        set.game_time_ms >= before.game_time_ms + 25_000,
        "it ran at 1000x"
    );
    // Frozen: it stays exactly there.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let frozen = svc.now(Context::default(), NowRequest {}).await.unwrap();
    assert_eq!(frozen.game_time_ms, set.game_time_ms);
    assert_eq!(frozen.scale, 0.0);
    // Running again continues from there, no jump.
    svc.set_scale(svc_ctx(), SetScaleRequest { scale: 1.0 })
        .await
        .unwrap();
    let later = svc.now(Context::default(), NowRequest {}).await.unwrap();
    assert!(
        later.game_time_ms >= set.game_time_ms && later.game_time_ms < set.game_time_ms + 1_000
    );
    for bad in [-1.0, 1000.5, f64::NAN] {
        assert_eq!(
            svc.set_scale(svc_ctx(), SetScaleRequest { scale: bad })
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
    }
}

#[tokio::test]
async fn the_epoch_and_scale_come_from_settings_and_the_record_survives() {
    let (_d, store) = store();
    let epoch = now_ms_i64() - 10_000;
    let settings = ClockSettings {
        epoch_ms: Some(epoch),
        scale: 6.0,
    };
    let svc = TimeService::new(Arc::clone(&store), settings, Arc::new(Notify::new()));
    let now = svc.now(Context::default(), NowRequest {}).await.unwrap();
    assert!(
        (60_000..62_000).contains(&now.game_time_ms),
        "{}",
        now.game_time_ms
    );
    // Another replica (other settings) reads the same clock.
    let other = service(&store, 1.0);
    let seen = other.now(Context::default(), NowRequest {}).await.unwrap();
    assert_eq!(seen.scale, 6.0);
    assert!(seen.game_time_ms >= now.game_time_ms);
}

async fn schedule(svc: &TimeService, at: i64, topic: &str) -> String {
    svc.schedule(
        svc_ctx(),
        ScheduleRequest {
            fire_at_game_time_ms: at,
            topic: topic.into(),
            payload: Some(serde_json::from_value(serde_json::json!({"at": at})).unwrap()),
            r#type: "dawn".into(),
        },
    )
    .await
    .unwrap()
    .event
    .unwrap()
    .id
}

#[tokio::test]
async fn scheduled_events_list_in_fire_order_and_cancel() {
    let (_d, store) = store();
    let svc = service(&store, 0.0);
    let late = schedule(&svc, 9_000_000, "world.ashfen").await;
    let early = schedule(&svc, 1_000, "world.ashfen").await;
    let mine = schedule(&svc, 5_000, "player.0123456789abcdef0123456789abcdef").await;
    let theirs = schedule(&svc, 6_000, "player.ffffffffffffffffffffffffffffffff").await;
    let all = svc
        .list_scheduled(svc_ctx(), ListScheduledRequest { limit: 0 })
        .await
        .unwrap();
    let ids: Vec<_> = all.events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        ids,
        vec![early.clone(), mine.clone(), theirs.clone(), late.clone()]
    );
    // A player sees public topics and their own, never another player's.
    let player = Context {
        principal: Some(Principal::Player {
            player_id: "0123456789abcdef0123456789abcdef".into(),
        }),
        ..Context::default()
    };
    let seen = svc
        .list_scheduled(player, ListScheduledRequest { limit: 10 })
        .await
        .unwrap();
    let ids: Vec<_> = seen.events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, vec![early.clone(), mine, late.clone()]);

    svc.cancel(svc_ctx(), CancelRequest { id: late.clone() })
        .await
        .unwrap();
    let again = svc.cancel(svc_ctx(), CancelRequest { id: late }).await;
    assert_eq!(again.unwrap_err().code(), Code::NotFound);
    let bad = svc
        .cancel(svc_ctx(), CancelRequest { id: "../x".into() })
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    let negative = svc
        .schedule(
            svc_ctx(),
            ScheduleRequest {
                fire_at_game_time_ms: -1,
                topic: "world.ashfen".into(),
                ..ScheduleRequest::default()
            },
        )
        .await;
    assert_eq!(negative.unwrap_err().code(), Code::InvalidArgument);
    let huge = svc
        .schedule(
            svc_ctx(),
            ScheduleRequest {
                fire_at_game_time_ms: 1,
                topic: "world.ashfen".into(),
                payload: Some(
                    serde_json::from_value(serde_json::json!("x".repeat(MAX_PAYLOAD_BYTES)))
                        .unwrap(),
                ),
                r#type: String::new(),
            },
        )
        .await;
    assert_eq!(huge.unwrap_err().code(), Code::ResourceExhausted, "413");
}

fn scheduler(store: &Arc<dyn Store>, bus: &Arc<Bus>) -> Scheduler {
    let calls = Calls::new();
    calls.connect(Arc::clone(bus) as Arc<dyn crate::kit::calls::Route>);
    Scheduler::new(
        Arc::clone(store),
        ClockSettings {
            epoch_ms: None,
            scale: 0.0,
        },
        calls.from(TIME_SERVICE),
        Arc::new(Notify::new()),
    )
}

#[tokio::test]
async fn due_events_fire_once_in_order_and_future_ones_wait() {
    let (_d, store) = store();
    frozen_at(&store, 1_000_000).await;
    let svc = service(&store, 0.0);
    let now = svc
        .now(Context::default(), NowRequest {})
        .await
        .unwrap()
        .game_time_ms;
    let b = schedule(&svc, now - 10, "world.b").await;
    let a = schedule(&svc, now - 20, "world.a").await;
    let future = schedule(&svc, now + 60_000, "world.later").await;
    let bus = Arc::new(Bus::default());
    let sched = scheduler(&store, &bus);
    let wait = sched.pass().await.unwrap();
    assert_eq!(
        wait, None,
        "the clock is frozen: the future event has no real due time"
    );
    assert_eq!(
        bus.published
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _, _, k)| (t.clone(), k.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("world.a".to_string(), format!("time:{a}")),
            ("world.b".to_string(), format!("time:{b}")),
        ]
    );
    sched.pass().await.unwrap();
    assert_eq!(bus.published.lock().unwrap().len(), 2, "fired once");
    let left = svc
        .list_scheduled(svc_ctx(), ListScheduledRequest { limit: 0 })
        .await
        .unwrap();
    assert_eq!(left.events.len(), 1);
    assert_eq!(left.events[0].id, future);

    // Time moves on past it (a scale change re-anchors; then it is due).
    svc.set_scale(svc_ctx(), SetScaleRequest { scale: 1000.0 })
        .await
        .unwrap();
    let wait = sched.pass().await.unwrap().expect("due in real time");
    assert!(wait <= Duration::from_millis(61), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    sched.pass().await.unwrap();
    assert_eq!(bus.published.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn two_schedulers_fire_each_event_once() {
    let (_d, store) = store();
    frozen_at(&store, 1_000_000).await;
    let svc = service(&store, 0.0);
    let now = svc
        .now(Context::default(), NowRequest {})
        .await
        .unwrap()
        .game_time_ms;
    for i in 0..20 {
        schedule(&svc, now - 100 + i, "world.race").await;
    }
    let bus = Arc::new(Bus::default());
    let (one, two) = (scheduler(&store, &bus), scheduler(&store, &bus));
    let (r1, r2) = tokio::join!(one.pass(), two.pass());
    r1.unwrap();
    r2.unwrap();
    assert_eq!(bus.published.lock().unwrap().len(), 20);
    assert_eq!(
        *bus.calls.lock().unwrap(),
        20,
        "no event was even offered twice"
    );
}

#[tokio::test]
async fn dying_between_firing_and_recording_publishes_no_second_event() {
    let (_d, store) = store();
    frozen_at(&store, 1_000_000).await;
    let svc = service(&store, 0.0);
    let now = svc
        .now(Context::default(), NowRequest {})
        .await
        .unwrap()
        .game_time_ms;
    let id = schedule(&svc, now - 1, "world.crash").await;
    let bus = Arc::new(Bus::default());
    scheduler(&store, &bus).pass().await.unwrap();
    // Put the record back as a scheduler that died after publishing would have left it: claimed,
    // with a lapsed lease.
    let mut event: Scheduled = serde_json::from_value(serde_json::json!({
        "id": id, "fire_at": now - 1, "topic": "world.crash", "type": "dawn",
        "payload": {"at": now - 1}, "claimed_until_ms": now_ms_i64() - 1
    }))
    .unwrap();
    event.claimed_until_ms = Some(now_ms_i64() - 1);
    store
        .put(&schedule_key(&id).unwrap(), encode(&event).unwrap(), None)
        .await
        .unwrap();
    scheduler(&store, &bus).pass().await.unwrap();
    assert_eq!(
        *bus.calls.lock().unwrap(),
        2,
        "offered again, under the same key"
    );
    assert_eq!(bus.published.lock().unwrap().len(), 1, "one event");
    assert!(
        store
            .get(&schedule_key(&id).unwrap())
            .await
            .unwrap()
            .is_none(),
        "and recorded"
    );
}

/// World as the herald sees it (two regions), and the bus.
struct Regions2(Bus);

impl crate::kit::calls::Route for Regions2 {
    fn call(
        &self,
        ctx: Context,
        method: &'static proto::MethodDesc,
        body: bytes::Bytes,
    ) -> proto::BoxFuture<Result<proto::Encoded<Status>, Status>> {
        if method.path != "/aicore.world.v1.WorldService/ListRegions" {
            return self.0.call(ctx, method, body);
        }
        let region = |id: &str| proto::aicore::world::v1::Region {
            id: id.into(),
            ..Default::default()
        };
        let reply = proto::codec::encode(
            proto::Codec::Proto,
            &proto::aicore::world::v1::ListRegionsResponse {
                regions: vec![region("hearthvale"), region("ashfen")],
                ..Default::default()
            },
        );
        Box::pin(async move { Ok(proto::Encoded::Unary(reply.map_err(Status::from)?)) })
    }
}

#[tokio::test]
async fn the_herald_announces_day_dawn_and_dusk_on_every_region_once() {
    let (_d, store) = store();
    frozen_at(&store, 30 * 3_600_000 + 5).await;
    let route = Arc::new(Regions2(Bus::default()));
    let calls = Calls::new();
    calls.connect(Arc::clone(&route) as Arc<dyn crate::kit::calls::Route>);
    let herald = super::herald::Herald::new(
        Clock::new(Arc::clone(&store), ClockSettings::default()),
        Arc::clone(&store),
        calls.from(TIME_SERVICE),
    );
    // The first pass ever starts the count: nothing from before it.
    herald.pass().await.unwrap();
    assert!(route.0.events().is_empty());
    // Thirty game hours later (a frozen clock moved by hand): the last day's transitions, each
    // once per region, in order.
    frozen_at(&store, 60 * 3_600_000 + 5).await;
    herald.pass().await.unwrap();
    herald.pass().await.unwrap();
    let published = route.0.published.lock().unwrap().clone();
    let hearth: Vec<String> = published
        .iter()
        .filter(|(topic, ..)| topic == "world.hearthvale")
        .map(|(_, kind, payload, _)| match kind.as_str() {
            "time.period_began" => format!(
                "{}@{}",
                payload["period"].as_str().unwrap(),
                payload["hour"].as_f64().unwrap()
            ),
            other => format!("{other}:{}", payload["day"].as_f64().unwrap()),
        })
        .collect();
    // Hours 37..=60: day 2 from 13:00 to day 3 at 12:00.
    assert_eq!(
        hearth,
        [
            "evening@17",
            "night@21",
            "time.day_began:3",
            "dawn@5",
            "morning@7",
            "afternoon@12"
        ]
    );
    assert_eq!(published.len(), 2 * hearth.len());
    for (i, (_, kind, ..)) in published.iter().enumerate() {
        if kind == "time.day_began" {
            let _: proto::aicore::time::v1::DayBegan = route.0.payload(i);
        } else {
            let _: proto::aicore::time::v1::PeriodBegan = route.0.payload(i);
        }
    }
    // A second replica redoing the same hours publishes nothing new (same keys).
    store.delete("time.herald", None).await.unwrap();
    store
        .put("time.herald", bytes::Bytes::from_static(b"36"), None)
        .await
        .unwrap();
    herald.pass().await.unwrap();
    assert_eq!(route.0.published.lock().unwrap().len(), published.len());
}
