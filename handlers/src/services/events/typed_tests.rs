//! Declared event types on the bus: their payload is their message, stamped with its name.

use std::sync::Arc;

use proto::aicore::events::v1::{EventBusServiceHandler as _, PublishRequest, ReplayRequest};

use super::*;
use crate::kit::event_log::{Retention, StoreLog};
use crate::kit::status::Code;

const ME: &str = "0123456789abcdef0123456789abcdef";

fn bus() -> (tempfile::TempDir, EventsService) {
    let (dir, store) = crate::kit::testing::temp_redb();
    let log = StoreLog::new(store, Retention::default());
    (dir, EventsService::new(Arc::new(log)))
}

fn service() -> Context {
    crate::kit::testing::service("game")
}

fn player(id: &str) -> Context {
    crate::kit::testing::player(id)
}

#[tokio::test]
async fn declared_types_carry_their_message_and_nothing_else() {
    use proto::aicore::quest::v1::{QuestCompleted, Reward};
    let (_d, bus) = bus();
    let topic = format!("player.{ME}");
    let completed = QuestCompleted {
        quest_id: "rats".into(),
        title: "Rats in the Cellar".into(),
        reward: Some(Reward {
            currency: 250,
            items: vec!["lantern_oil".into()],
            experience: 120,
        }),
        completed_game_time_ms: 5,
        completed_at_ms: 1_796_000_000_000,
        level: 2,
        levels_gained: 1,
        locale: "en".into(),
    };
    let request = crate::kit::event_log::typed_event(topic.clone(), &completed).unwrap();
    bus.publish(service(), request).await.unwrap();
    // A free-form type says no payload type.
    let tick = PublishRequest {
        topic: topic.clone(),
        r#type: "tick".into(),
        payload: Some(serde_json::from_value(serde_json::json!({"n": 1})).unwrap()),
    };
    bus.publish(service(), tick).await.unwrap();
    let events = bus
        .replay(
            player(ME),
            ReplayRequest {
                topic: topic.clone(),
                after_sequence: 0,
                limit: 0,
            },
        )
        .await
        .unwrap()
        .events;
    assert_eq!(events[0].payload_type, "aicore.quest.v1.QuestCompleted");
    assert_eq!(events[1].payload_type, "");
    // The envelope as Replay and the stream write it: the payload decodes as its message, and
    // the money is a string as in Complete's answer.
    let json: serde_json::Value =
        serde_json::from_slice(&proto::codec::to_json_vec(&events[0]).unwrap()).unwrap();
    assert_eq!(json["payloadType"], "aicore.quest.v1.QuestCompleted");
    assert_eq!(json["payload"]["reward"]["currency"], "250");
    let back: QuestCompleted = serde_json::from_value(json["payload"].clone()).unwrap();
    assert_eq!(back, completed);

    // A service key may publish a declared type only in its declared shape.
    let forged = [
        serde_json::json!({"questId": "rats", "currency": 250}),
        serde_json::json!({"questId": 7}),
        serde_json::json!("quest done"),
    ];
    for payload in forged {
        let err = bus
            .publish(
                service(),
                PublishRequest {
                    topic: topic.clone(),
                    r#type: "quest.completed".into(),
                    payload: Some(serde_json::from_value(payload.clone()).unwrap()),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{payload}");
        assert!(err.message().contains("aicore.quest.v1.QuestCompleted"));
    }
    // And a player never publishes one (the head names a service), whatever its shape.
    let mut request = crate::kit::event_log::typed_event(topic.clone(), &completed).unwrap();
    request.r#type = "quest.completed".into();
    let err = bus.publish(player(ME), request).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}
