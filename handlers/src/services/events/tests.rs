use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use proto::aicore::events::v1::{EventBusServiceHandler as _, PublishRequest, ReplayRequest};

use pbjson_types::{Value, value::Kind};

use super::*;
use crate::kit::event_log::{GAP, Retention, SUBSCRIBED, StoreLog, positions_of};
use crate::kit::status::Code;

const ME: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "ffffffffffffffffffffffffffffffff";

fn player(id: &str) -> Context {
    crate::kit::testing::player(id)
}

fn service() -> Context {
    crate::kit::testing::service("game")
}

fn bus(per_topic: u64) -> (tempfile::TempDir, EventsService) {
    let (dir, store) = crate::kit::testing::temp_redb();
    let log = StoreLog::new(
        store,
        Retention {
            per_topic,
            ..Retention::default()
        },
    );
    (dir, EventsService::new(Arc::new(log)))
}

async fn publish(bus: &EventsService, ctx: &Context, topic: &str, n: f64) -> Result<u64, Status> {
    bus.publish(
        ctx.clone(),
        PublishRequest {
            topic: topic.into(),
            r#type: "tick".into(),
            payload: Some(number_value(n)),
        },
    )
    .await
    .map(|r| r.sequence)
}

fn number_value(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

async fn next(s: &mut BoxStream<Result<Event, Status>>) -> Event {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event in time")
        .expect("the stream goes on")
        .expect("not an error")
}

#[test]
fn topic_names() {
    for ok in [
        "world",
        "weather.north",
        "quest-log_2",
        &format!("player.{ME}"),
    ] {
        assert!(validate_topic(ok).is_ok(), "{ok}");
    }
    let long = "a".repeat(129);
    for bad in [
        "",
        ".world",
        "world.",
        "a..b",
        "wor ld",
        "a:b",
        "a,b",
        "a.*",
        "player.bob",
        &format!("player.{ME}.x"),
        &long,
    ] {
        assert_eq!(
            validate_topic(bad).unwrap_err().code(),
            Code::InvalidArgument,
            "{bad}"
        );
    }
}

#[test]
fn who_reads_and_publishes_what() {
    let mine = format!("player.{ME}");
    let theirs = format!("player.{OTHER}");
    assert!(may_read(&player(ME), &mine).is_ok());
    assert!(may_read(&player(ME), "world").is_ok());
    assert_eq!(
        may_read(&player(ME), &theirs).unwrap_err().code(),
        Code::PermissionDenied
    );
    assert!(may_read(&service(), &theirs).is_ok());
    assert!(may_publish(&player(ME), &mine, "tick").is_ok());
    for t in ["world", theirs.as_str()] {
        assert_eq!(
            may_publish(&player(ME), t, "tick").unwrap_err().code(),
            Code::PermissionDenied
        );
    }
    assert!(may_publish(&service(), "world", "tick").is_ok());
    // A service's event types are the service's.
    assert_eq!(
        may_publish(&player(ME), &mine, "quest.completed")
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert!(may_publish(&player(ME), &mine, "questlog.note").is_ok());
    assert!(may_publish(&service(), &mine, "quest.completed").is_ok());
    // In any case, bare, and the heads that name no service but are services' all the same.
    for forged in [
        "Quest.completed",
        "QUEST.completed",
        "quest",
        "Payment",
        "game.boss_defeated",
        "Game.enemy_killed",
        "game",
        "edge.subscribed",
        "EDGE.gap",
        // The backend's facts about a player: a player cannot level themselves up.
        "player.leveled",
        "Player.Leveled",
        "PLAYER",
    ] {
        assert_eq!(
            may_publish(&player(ME), &mine, forged).unwrap_err().code(),
            Code::PermissionDenied,
            "{forged}"
        );
    }
    for fine in [
        "gamer.note",
        "games",
        "edgy.emote",
        "chat.message",
        "quests",
        "player_died",
        "players.note",
    ] {
        assert!(may_publish(&player(ME), &mine, fine).is_ok(), "{fine}");
    }
    assert!(may_publish(&service(), "world", "game.boss_defeated").is_ok());
    assert_eq!(
        may_read(&Context::default(), "world").unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn every_event_says_who_published_it() {
    let (_dir, bus) = bus(1000);
    let mine = format!("player.{ME}");
    publish(&bus, &player(ME), &mine, 1.0).await.unwrap();
    publish(&bus, &service(), &mine, 2.0).await.unwrap();
    // A backend service's call carries `svc:<name>`: its name is stamped too.
    let quest = Context {
        principal: Some(crate::kit::calls::principal_of(
            proto::ServiceDesc::by_short("quest").unwrap(),
        )),
        ..Context::default()
    };
    publish(&bus, &quest, &mine, 3.0).await.unwrap();
    let events = bus
        .replay(
            player(ME),
            ReplayRequest {
                topic: mine,
                after_sequence: 0,
                limit: 0,
            },
        )
        .await
        .unwrap()
        .events;
    let stamps: Vec<(PublisherKind, &str)> = events
        .iter()
        .map(|e| {
            let p = e.publisher.as_ref().unwrap();
            (p.kind(), p.service.as_str())
        })
        .collect();
    assert_eq!(
        stamps,
        vec![
            (PublisherKind::Player, ""),
            (PublisherKind::Service, ""),
            (PublisherKind::Service, "quest"),
        ]
    );
}

#[tokio::test]
async fn sequences_are_per_topic_and_replay_pages() {
    let (_dir, bus) = bus(1000);
    let svc = service();
    for i in 1..=5 {
        assert_eq!(
            publish(&bus, &svc, "world", f64::from(i)).await.unwrap(),
            u64::try_from(i).unwrap()
        );
    }
    assert_eq!(publish(&bus, &svc, "weather", 0.0).await.unwrap(), 1);
    let page = bus
        .replay(
            player(ME),
            ReplayRequest {
                topic: "world".into(),
                after_sequence: 2,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(page.events[0].payload, Some(number_value(3.0)));
    assert_eq!(page.events[0].r#type, "tick");
    assert!(page.events[0].published_at_ms > 0);
    let bad = bus
        .replay(
            svc.clone(),
            ReplayRequest {
                topic: "world".into(),
                after_sequence: 0,
                limit: 1001,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn publishing_checks_its_input() {
    let (_dir, bus) = bus(1000);
    let mine = format!("player.{ME}");
    assert_eq!(publish(&bus, &player(ME), &mine, 1.0).await.unwrap(), 1);
    assert_eq!(
        publish(&bus, &player(ME), "world", 1.0)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let reserved = bus
        .publish(
            service(),
            PublishRequest {
                topic: "world".into(),
                r#type: GAP.into(),
                payload: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(reserved.code(), Code::InvalidArgument);
    let huge = bus
        .publish(
            service(),
            PublishRequest {
                topic: "world".into(),
                r#type: "big".into(),
                payload: Some(Value {
                    kind: Some(Kind::StringValue("x".repeat(MAX_PAYLOAD_BYTES + 1))),
                }),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::ResourceExhausted);
    assert!(huge.message().contains("payload"), "{}", huge.message());
    // A player's own topic takes smaller payloads: 1,000 of them stay within about 4 MiB.
    let me = "0123456789abcdef0123456789abcdef";
    let big = |n: usize| PublishRequest {
        topic: format!("player.{me}"),
        r#type: "note".into(),
        payload: Some(Value {
            kind: Some(Kind::StringValue("x".repeat(n))),
        }),
    };
    let refused = bus
        .publish(player(me), big(MAX_PLAYER_PAYLOAD_BYTES))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    bus.publish(player(me), big(MAX_PLAYER_PAYLOAD_BYTES - 16))
        .await
        .unwrap();
}

#[tokio::test]
async fn subscriptions_start_at_the_head_follow_live_and_resume_exactly() {
    let (_dir, bus) = bus(1000);
    let svc = service();
    publish(&bus, &svc, "world", 1.0).await.unwrap();
    publish(&bus, &svc, "world", 2.0).await.unwrap();
    let mut live = bus
        .subscribe(
            player(ME),
            SubscribeRequest {
                topics: vec!["world".into(), format!("player.{ME}")],
                after: Default::default(),
            },
        )
        .await
        .unwrap();
    let first = next(&mut live).await;
    assert_eq!(first.r#type, SUBSCRIBED);
    let positions = positions_of(&first);
    assert_eq!(positions.get("world"), Some(&2));
    assert_eq!(positions.get(&format!("player.{ME}")), Some(&0));

    publish(&bus, &svc, "world", 3.0).await.unwrap();
    publish(&bus, &svc, &format!("player.{ME}"), 9.0)
        .await
        .unwrap();
    let a = next(&mut live).await;
    let b = next(&mut live).await;
    let mut got: Vec<(String, u64)> = [a, b].into_iter().map(|e| (e.topic, e.sequence)).collect();
    got.sort();
    assert_eq!(got, [(format!("player.{ME}"), 1), ("world".to_owned(), 3)]);

    // A client that saw world 1 resumes with 2 and 3, nothing twice, then live.
    let mut resumed = bus
        .subscribe(
            player(ME),
            SubscribeRequest {
                topics: vec!["world".into()],
                after: [("world".to_owned(), 1)].into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        positions_of(&next(&mut resumed).await).get("world"),
        Some(&1)
    );
    assert_eq!(next(&mut resumed).await.sequence, 2);
    assert_eq!(next(&mut resumed).await.sequence, 3);
    publish(&bus, &svc, "world", 4.0).await.unwrap();
    assert_eq!(next(&mut resumed).await.sequence, 4);
    assert_eq!(next(&mut live).await.sequence, 4);

    // A position past the head (a log since emptied) does not skip new events.
    let mut ahead = bus
        .subscribe(
            svc.clone(),
            SubscribeRequest {
                topics: vec!["world".into()],
                after: [("world".to_owned(), 99)].into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(positions_of(&next(&mut ahead).await).get("world"), Some(&4));
    publish(&bus, &svc, "world", 5.0).await.unwrap();
    assert_eq!(next(&mut ahead).await.sequence, 5);

    let denied = bus
        .subscribe(
            player(ME),
            SubscribeRequest {
                topics: vec![format!("player.{OTHER}")],
                after: Default::default(),
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn retention_is_bounded_and_a_lost_range_is_said() {
    let (_dir, bus) = bus(3);
    let svc = service();
    for i in 1..=10 {
        publish(&bus, &svc, "world", f64::from(i)).await.unwrap();
    }
    let all = bus
        .replay(
            svc.clone(),
            ReplayRequest {
                topic: "world".into(),
                after_sequence: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<u64> = all.events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [8, 9, 10]);
    // Saw 2, events 3-7 expired: a gap marker, then what is left.
    let mut s = bus
        .subscribe(
            svc,
            SubscribeRequest {
                topics: vec!["world".into()],
                after: [("world".to_owned(), 2)].into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(next(&mut s).await.r#type, SUBSCRIBED);
    let gap = next(&mut s).await;
    assert_eq!(gap.r#type, GAP);
    assert_eq!(gap.topic, "world");
    assert_eq!(next(&mut s).await.sequence, 8);
}

#[test]
fn order_checks_drop_repeats_and_mark_holes() {
    let mut seen: BTreeMap<String, u64> = [("w".to_owned(), 5)].into();
    let ev = |seq| {
        Ok(Event {
            topic: "w".into(),
            sequence: seq,
            ..Event::default()
        })
    };
    assert!(check_order(&mut seen, ev(5)).is_empty());
    assert_eq!(check_order(&mut seen, ev(6)).len(), 1);
    let out = check_order(&mut seen, ev(9));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().r#type, GAP);
    assert_eq!(seen["w"], 9);
}

#[tokio::test]
async fn a_topic_never_lists_another_topic_it_is_a_prefix_of() {
    let (_d, bus) = bus(10);
    let game = service();
    assert_eq!(publish(&bus, &game, "world", 1.0).await.unwrap(), 1);
    assert_eq!(publish(&bus, &game, "world.north", 2.0).await.unwrap(), 1);
    assert_eq!(publish(&bus, &game, "world", 3.0).await.unwrap(), 2);
    let read = |topic: &'static str| {
        let bus = bus.clone();
        let game = game.clone();
        async move {
            bus.replay(
                game,
                ReplayRequest {
                    topic: topic.into(),
                    after_sequence: 0,
                    limit: 0,
                },
            )
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| (e.topic, e.sequence))
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read("world").await,
        [("world".to_owned(), 1), ("world".to_owned(), 2)]
    );
    assert_eq!(read("world.north").await, [("world.north".to_owned(), 1)]);
    // Pruning the parent (10 kept) never deletes the child's events.
    for n in 0..20 {
        publish(&bus, &game, "world", f64::from(n)).await.unwrap();
    }
    assert_eq!(read("world.north").await.len(), 1);
    // The bare player topic is reserved for everyone.
    for ctx in [game.clone(), player(ME)] {
        let err = bus
            .replay(
                ctx,
                ReplayRequest {
                    topic: "player".into(),
                    after_sequence: 0,
                    limit: 0,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}

#[tokio::test]
async fn events_in_the_legacy_layout_move_to_their_own_topic() {
    use prost::Message as _;
    let (_dir, store) = crate::kit::testing::temp_store();
    let old = |topic: &str, seq: u64| Event {
        topic: topic.into(),
        sequence: seq,
        r#type: "tick".into(),
        ..Event::default()
    };
    for (topic, seq) in [("world", 1), ("world", 2), ("world.north", 1)] {
        store
            .put(
                &format!("events.log.{topic}.{seq:020}"),
                bytes::Bytes::from(old(topic, seq).encode_to_vec()),
                None,
            )
            .await
            .unwrap();
    }
    // Something that is no event key is left alone, not deleted.
    store
        .put("events.log.notes", bytes::Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    let log = StoreLog::new(Arc::clone(&store), Retention::default());
    assert_eq!(log.migrate_legacy().await.unwrap(), 3);
    assert_eq!(log.migrate_legacy().await.unwrap(), 0, "once is enough");
    let left = store.list("events.log.", None, 10).await.unwrap().entries;
    assert_eq!(
        left.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["events.log.notes"]
    );
    assert_eq!(log.head("world").await.unwrap(), 2);
    assert_eq!(log.head("world.north").await.unwrap(), 1);
    let world = log.read("world", 0, 10).await.unwrap();
    assert_eq!(world, [old("world", 1), old("world", 2)]);
    let bus = EventsService::new(Arc::new(log));
    assert_eq!(publish(&bus, &service(), "world", 3.0).await.unwrap(), 3);
}

#[tokio::test]
async fn admin_topics_are_the_audit_s_alone() {
    let (_dir, bus) = bus(10);
    let wide = crate::kit::testing::service("ops-tool");
    for topic in ["admin.audit", "ADMIN.audit", "admin.keys.x"] {
        for ctx in [player(ME), service(), wide.clone()] {
            let err = publish(&bus, &ctx, topic, 1.0).await.unwrap_err();
            assert_eq!(err.code(), Code::PermissionDenied, "{topic}");
            let err = bus
                .replay(
                    ctx.clone(),
                    ReplayRequest {
                        topic: topic.into(),
                        after_sequence: 0,
                        limit: 0,
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::PermissionDenied, "{topic}");
            let err = bus
                .subscribe(
                    ctx.clone(),
                    SubscribeRequest {
                        topics: vec!["world".into(), topic.into()],
                        ..SubscribeRequest::default()
                    },
                )
                .await
                .err()
                .expect("refused");
            assert_eq!(err.code(), Code::PermissionDenied, "{topic}");
        }
    }
    // A topic that merely starts with the word is anyone's.
    assert!(
        publish(&bus, &service(), "administration", 1.0)
            .await
            .is_ok()
    );
}
