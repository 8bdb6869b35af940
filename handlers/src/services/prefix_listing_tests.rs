//! The security review's audit of prefix listings: every listing in the store, run with
//! neighbours that a careless key layout would let in (another player, a sibling namespace whose
//! name starts the same, records of other kinds under the same player). The event log's own
//! case (a topic that is a prefix of another) is tested in `events::tests`.

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::payment::v1::{
    CreditRequest, ListTransactionsRequest, PaymentServiceHandler as _, PurchaseRequest,
    RefundRequest,
};
use proto::aicore::state::v1::{ListRequest, PutRequest, StateServiceHandler as _};

use crate::kit::content::Content as _;
use crate::kit::context::{Context, Principal};
use crate::kit::store::Store;

const ME: &str = "0123456789abcdef0123456789abcdef";
const YOU: &str = "0123456789abcdef0123456789abcdee";

fn player(id: &str, key: &str) -> Context {
    Context {
        principal: Some(Principal::Player {
            player_id: id.into(),
        }),
        idempotency_key: Some(key.into()),
        ..Context::default()
    }
}

fn game(key: &str) -> Context {
    crate::kit::testing::keyed(crate::kit::testing::service("game"), key)
}

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let (dir, s) = crate::kit::testing::temp_store();
    (dir, s)
}

async fn junk(store: &dyn Store, keys: &[&str]) {
    for k in keys {
        store.put(k, Bytes::from_static(b"{}"), None).await.unwrap();
    }
}

#[tokio::test]
async fn state_lists_only_the_players_own_keys() {
    let (_d, store) = store();
    let svc = crate::services::state::StateService::new(Arc::clone(&store), Default::default());
    for (who, key) in [(ME, "inv"), (ME, "inventory.a"), (YOU, "inv")] {
        svc.put(
            player(who, "-"),
            PutRequest {
                key: key.into(),
                value: Some(pbjson_types::Value::from(1.0)),
                expected_version: None,
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    }
    junk(
        store.as_ref(),
        &[&format!("statex.{ME}.inv"), &format!("state.{ME}x.inv")],
    )
    .await;
    let list = |prefix: &str| {
        let svc = svc.clone();
        let prefix = prefix.to_owned();
        async move {
            svc.list(
                player(ME, "-"),
                ListRequest {
                    prefix,
                    limit: 0,
                    cursor: String::new(),
                    player_id: String::new(),
                },
            )
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.key)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, ["inv", "inventory.a"]);
    assert_eq!(list("inventory.").await, ["inventory.a"]);
}

#[tokio::test]
async fn the_ledger_lists_only_transactions_of_its_player() {
    let (_d, store) = store();
    let catalog = crate::services::payment::Catalog::embedded().unwrap();
    let svc = crate::services::payment::PaymentService::new(Arc::clone(&store), Arc::new(catalog));
    for (who, key) in [(ME, "g1"), (YOU, "g2")] {
        svc.credit(
            game(key),
            CreditRequest {
                player_id: who.into(),
                amount: 1000,
                reason: "gift".into(),
            },
        )
        .await
        .unwrap();
    }
    let bought = svc
        .purchase(
            player(ME, "b1"),
            PurchaseRequest {
                sku: "lantern_oil".into(),
                quantity: 1,
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    svc.refund(
        game("r1"),
        RefundRequest {
            transaction_id: bought.transaction.unwrap().id,
            player_id: ME.into(),
        },
    )
    .await
    .unwrap();
    junk(
        store.as_ref(),
        &[
            &format!("payment.{ME}.txlog.1"),
            &format!("payment.{ME}x.tx.1"),
        ],
    )
    .await;
    let listed = svc
        .list_transactions(player(ME, "-"), ListTransactionsRequest::default())
        .await
        .unwrap()
        .transactions;
    let ids: Vec<_> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["tx-1", "tx-2", "tx-3"],
        "credit, purchase, refund; no key or refund records"
    );
}

#[tokio::test]
async fn keys_and_models_list_only_their_own_namespace() {
    let (_d, store) = store();
    let keys = crate::kit::api_keys::ApiKeys::new(Arc::clone(&store));
    keys.create("gs", &["*".to_owned()]).await.unwrap();
    let models = crate::services::models::Catalog::new(Arc::clone(&store));
    let before = models.list(true).await.unwrap().len();
    junk(
        store.as_ref(),
        &["apikey.idx.zz", "apikey.id", "models.mx.junk", "models.m"],
    )
    .await;
    assert_eq!(keys.list().await.unwrap().len(), 1);
    assert_eq!(models.list(true).await.unwrap().len(), before);
}

#[tokio::test]
async fn pruning_sessions_and_tokens_touches_nothing_else() {
    let (_d, store) = store();
    let others = [
        "auth.sessionsx.s1",
        "auth.refreshx.r1",
        "auth.revokedx.1",
        "auth.users.alice",
        "auth.device_key",
    ];
    junk(store.as_ref(), &others).await;
    crate::services::auth::prune_expired(store.as_ref(), || false)
        .await
        .unwrap();
    for k in others {
        assert!(store.get(k).await.unwrap().is_some(), "{k} kept");
    }
}

#[tokio::test]
async fn world_listings_stay_in_their_region_cell_and_kind() {
    use proto::aicore::world::v1::{
        Box as Bounds, Entity, GetRegionRequest, QueryEntitiesRequest, UpsertEntityRequest, Vec3,
        WORLD_SERVICE, WorldServiceHandler as _,
    };
    let (_d, store) = store();
    let (calls, _bus) = crate::kit::calls::fake::Bus::connected();
    let world = crate::services::world::WorldService::new(
        Arc::clone(&store),
        Arc::new(crate::services::world::Regions::embedded().unwrap()),
        calls.from(WORLD_SERVICE),
    );
    let e = Entity {
        id: "lamp".into(),
        region_id: "hearthvale".into(),
        kind: "item".into(),
        position: Some(Vec3 {
            x: 2150.0,
            y: 1.0,
            z: 150.0,
        }),
        ..Entity::default()
    };
    world
        .upsert_entity(
            game("-"),
            UpsertEntityRequest {
                entity: Some(e),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    // Neighbours that are no entity at all: a listing that reached them would fail to decode,
    // or count them.
    junk(
        store.as_ref(),
        &[
            "world.ent.hearthvale-old.x",
            "world.cell.hearthvale.1_10.x",
            "world.cell.hearthvale.11_1.x",
            "world.cell.hearthvalex.1_1.x",
            "world.lock.hearthvale-old.lamp",
            "world.count.hearthvale-old.00",
            "world.countx.hearthvale.00",
        ],
    )
    .await;
    let q = |within| QueryEntitiesRequest {
        region_id: "hearthvale".into(),
        within,
        ..QueryEntitiesRequest::default()
    };
    let v = |x, y, z| Some(Vec3 { x, y, z });
    let cell = Some(Bounds {
        min: v(2100.0, 0.0, 100.0),
        max: v(2199.0, 5.0, 199.0),
    });
    for within in [None, cell] {
        let r = world.query_entities(game("-"), q(within)).await.unwrap();
        assert_eq!(r.entities.len(), 1);
        assert_eq!(r.entities[0].id, "lamp");
    }
    let count = world
        .get_region(
            game("-"),
            GetRegionRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .entity_count;
    assert_eq!(count, 1);
    assert_eq!(
        world.repair(std::time::Duration::ZERO).await.unwrap(),
        0,
        "no journal of ours"
    );
}

#[tokio::test]
async fn scheduled_events_list_only_themselves() {
    use proto::aicore::time::v1::{ListScheduledRequest, TimeServiceHandler as _};
    let (_d, store) = store();
    let time = crate::services::time::TimeService::new(
        Arc::clone(&store),
        crate::services::time::ClockSettings::default(),
        Arc::new(tokio::sync::Notify::new()),
    );
    junk(
        store.as_ref(),
        &["time.schedx.1", "time.sched2.1", "time.clockx"],
    )
    .await;
    let r = time
        .list_scheduled(game("-"), ListScheduledRequest { limit: 0 })
        .await
        .unwrap();
    assert!(r.events.is_empty());
}
