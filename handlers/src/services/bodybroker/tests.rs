use super::*;
use crate::kit::content::Content as _;
use crate::kit::context::Principal;

fn def(kind: &str) -> EventDef {
    GameEvents::load(None).unwrap().get(kind).unwrap().clone()
}

fn payload(v: serde_json::Value) -> Option<Value> {
    Some(serde_json::from_value(v).unwrap())
}

#[test]
fn payloads_are_checked_against_the_routing_table() {
    let killed = def("enemy_killed");
    let ok = check_payload(
        &killed,
        payload(serde_json::json!({"enemy": "marsh-hound", "count": 3})),
    )
    .unwrap();
    assert_eq!(number_field(&ok, "count"), Some(3.0));
    for bad in [
        serde_json::json!({"count": 3}),
        serde_json::json!({"enemy": "x", "count": 2.5}),
        serde_json::json!({"enemy": "x", "gold": 1}),
        serde_json::json!({"enemy": ""}),
        serde_json::json!({"enemy": 7}),
        serde_json::json!([1]),
    ] {
        let e = check_payload(&killed, payload(bad.clone())).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
    }
}

#[test]
fn deliveries_are_keyed_by_the_caller_and_the_event() {
    let service = |name: &str| Context {
        principal: Some(Principal::Service {
            name: name.into(),
            scopes: vec![].into(),
        }),
        ..Context::default()
    };
    let event = GameEvent {
        id: "e-1".into(),
        ..GameEvent::default()
    };
    let a = delivery_base(&service("a"), &event).unwrap();
    assert_eq!(a, delivery_base(&service("a"), &event).unwrap());
    assert_ne!(a, delivery_base(&service("b"), &event).unwrap());
    let mut keyed = service("a");
    keyed.idempotency_key = Some("e-1".into());
    let anonymous = GameEvent::default();
    assert_eq!(delivery_base(&keyed, &anonymous).unwrap(), a);
    assert_eq!(
        delivery_base(&service("a"), &anonymous).unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[test]
fn a_callers_mistake_fails_and_a_parts_trouble_degrades() {
    assert!(callers_fault(Code::NotFound));
    assert!(callers_fault(Code::InvalidArgument));
    assert!(!callers_fault(Code::Unavailable));
    assert!(!callers_fault(Code::DeadlineExceeded));
}
