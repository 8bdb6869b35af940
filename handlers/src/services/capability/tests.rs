use super::*;
use crate::kit::status::Code;

fn svc(
    lease: Duration,
) -> (
    tempfile::TempDir,
    CapabilityService,
    LateBound<dyn Discovery>,
) {
    let (dir, store) = crate::kit::testing::temp_store();
    let discovery = LateBound::<dyn Discovery>::new();
    let svc = CapabilityService::new(store, CapabilitySettings { lease }, discovery.clone());
    (dir, svc, discovery)
}

fn as_service(name: &str) -> Context {
    Context {
        principal: Some(Principal::Service {
            name: name.into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    }
}

fn worker(id: &str, services: &[&str]) -> RegisterRequest {
    RegisterRequest {
        worker: Some(Worker {
            id: id.into(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            version: "1.4.0".into(),
            ..Worker::default()
        }),
    }
}

async fn ids(svc: &CapabilityService, service: &str) -> Vec<String> {
    svc.list(
        as_service("ops"),
        ListRequest {
            service: service.into(),
        },
    )
    .await
    .unwrap()
    .workers
    .into_iter()
    .map(|w| w.id)
    .collect()
}

#[tokio::test]
async fn register_is_idempotent_heartbeat_extends_and_deregister_removes() {
    let (_d, svc, _) = svc(Duration::from_secs(30));
    let first = svc
        .register(
            as_service("gs"),
            worker("w-1", &["weather", "npc", "weather"]),
        )
        .await
        .unwrap();
    assert_eq!(first.lease_seconds, 30);
    svc.register(as_service("gs"), worker("w-1", &["weather", "npc"]))
        .await
        .unwrap();
    let listed = svc
        .list(as_service("ops"), ListRequest::default())
        .await
        .unwrap()
        .workers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].services, ["npc", "weather"]);
    assert_eq!(listed[0].source, "registered");
    assert_eq!(ids(&svc, "npc").await, ["w-1"]);
    assert!(ids(&svc, "llm").await.is_empty());
    svc.heartbeat(
        as_service("gs"),
        HeartbeatRequest {
            worker_id: "w-1".into(),
        },
    )
    .await
    .unwrap();
    // Another principal cannot take over, beat for or remove a live registration.
    for e in [
        svc.register(as_service("intruder"), worker("w-1", &["llm"]))
            .await
            .unwrap_err(),
        svc.heartbeat(
            as_service("intruder"),
            HeartbeatRequest {
                worker_id: "w-1".into(),
            },
        )
        .await
        .unwrap_err(),
        svc.deregister(
            as_service("intruder"),
            DeregisterRequest {
                worker_id: "w-1".into(),
            },
        )
        .await
        .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    svc.deregister(
        as_service("gs"),
        DeregisterRequest {
            worker_id: "w-1".into(),
        },
    )
    .await
    .unwrap();
    assert!(ids(&svc, "").await.is_empty());
    // Twice is fine; a heartbeat now says to register again.
    svc.deregister(
        as_service("gs"),
        DeregisterRequest {
            worker_id: "w-1".into(),
        },
    )
    .await
    .unwrap();
    let gone = svc
        .heartbeat(
            as_service("gs"),
            HeartbeatRequest {
                worker_id: "w-1".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_lapsed_lease_leaves_the_list() {
    let (_d, svc, _) = svc(Duration::from_secs(1));
    svc.register(as_service("gs"), worker("w-2", &["llm"]))
        .await
        .unwrap();
    assert_eq!(ids(&svc, "").await, ["w-2"]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(ids(&svc, "").await.is_empty());
    let e = svc
        .heartbeat(
            as_service("gs"),
            HeartbeatRequest {
                worker_id: "w-2".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn bad_registrations_and_players_are_refused() {
    let (_d, svc, _) = svc(Duration::from_secs(30));
    for bad in [
        worker("", &["llm"]),
        worker("UPPER", &["llm"]),
        worker("w", &[]),
        worker("w", &["nope"]),
        RegisterRequest { worker: None },
    ] {
        let e = svc.register(as_service("gs"), bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    let mut big = worker("w", &["llm"]);
    if let Some(w) = big.worker.as_mut() {
        w.metadata = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
    }
    assert_eq!(
        svc.register(as_service("gs"), big)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let player = Context {
        principal: Some(Principal::Player {
            player_id: "p".into(),
        }),
        ..Context::default()
    };
    let e = svc
        .register(player, worker("w", &["llm"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

struct Found;

impl Discovery for Found {
    fn discovered(&self) -> Vec<Worker> {
        vec![Worker {
            id: "nats-abc".into(),
            services: vec!["weather".into()],
            source: "discovered".into(),
            ..Worker::default()
        }]
    }
}

#[tokio::test]
async fn discovered_services_are_listed_beside_registrations() {
    let (_d, svc, discovery) = svc(Duration::from_secs(30));
    svc.register(as_service("gs"), worker("w-3", &["llm"]))
        .await
        .unwrap();
    discovery.connect(Arc::new(Found));
    let all = svc
        .list(as_service("ops"), ListRequest::default())
        .await
        .unwrap()
        .workers;
    let sources: Vec<_> = all
        .iter()
        .map(|w| (w.id.as_str(), w.source.as_str()))
        .collect();
    assert_eq!(sources, [("w-3", "registered"), ("nats-abc", "discovered")]);
    assert_eq!(ids(&svc, "weather").await, ["nats-abc"]);
}
