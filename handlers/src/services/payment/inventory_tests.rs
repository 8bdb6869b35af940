//! The inventory: purchases, grants, consumption, refunds and what players may not do.

use std::collections::BTreeMap;

use super::*;
use crate::kit::calls::fake::Bus;
use crate::kit::content::Content as _;
use crate::kit::status::Code;
use proto::aicore::payment::v1::{Inventory, ItemGrant};

const P: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";

/// Ten slots; a draught costs 10, a chest adds 5 slots (two at most), a sword costs 50.
fn catalog() -> Arc<Catalog> {
    let text = "[inventory]\nbase_capacity = 10\n\
        [[item]]\nsku = \"draught\"\nname = \"Draught\"\ndescription = \"A red vial.\"\nprice = 10\nmax_quantity = 20\nkind = \"stackable\"\n\
        [[item]]\nsku = \"chest\"\nname = \"Chest\"\ndescription = \"Five more slots.\"\nprice = 100\nmax_quantity = 2\nkind = \"capacity\"\ncapacity = 5\n\
        [[item]]\nsku = \"sword\"\nname = \"Sword\"\ndescription = \"Sharp.\"\nprice = 50\nmax_quantity = 1\nkind = \"stackable\"\n";
    Arc::new(Catalog::parse(&crate::kit::content::Source::embedded("test.toml", text)).unwrap())
}

fn svc() -> (tempfile::TempDir, PaymentService, Arc<Bus>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let (calls, bus) = Bus::connected();
    let svc = PaymentService::new(store, catalog())
        .with_calls(calls.from(proto::aicore::payment::v1::PAYMENT_SERVICE));
    (dir, svc, bus)
}

fn service(key: &str) -> Context {
    crate::kit::testing::keyed(crate::kit::testing::service("game"), key)
}

fn player(key: &str) -> Context {
    crate::kit::testing::keyed(crate::kit::testing::player(P), key)
}

fn buy(sku: &str, quantity: u32) -> PurchaseRequest {
    PurchaseRequest {
        sku: sku.into(),
        quantity,
        player_id: String::new(),
    }
}

fn grant(currency: i64, items: &[(&str, u32)]) -> GrantRequest {
    GrantRequest {
        player_id: P.into(),
        currency,
        items: items
            .iter()
            .map(|(sku, quantity)| ItemGrant {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        reason: "Quest reward: Rats in the Cellar".into(),
    }
}

fn consume(sku: &str, quantity: u32) -> ConsumeRequest {
    ConsumeRequest {
        player_id: P.into(),
        sku: sku.into(),
        quantity,
        reason: "gift:maud-feverfew".into(),
    }
}

async fn fund(svc: &PaymentService, amount: i64) {
    let req = CreditRequest {
        player_id: P.into(),
        amount,
        reason: "seed".into(),
    };
    svc.credit(service(&format!("fund-{amount}")), req)
        .await
        .unwrap();
}

async fn inventory(svc: &PaymentService) -> Inventory {
    svc.get_inventory(player("-"), GetInventoryRequest::default())
        .await
        .unwrap()
        .inventory
        .unwrap()
}

/// (sku, quantity) of the items held.
async fn held(svc: &PaymentService) -> Vec<(String, u32)> {
    inventory(svc)
        .await
        .items
        .into_iter()
        .map(|i| (i.sku, i.quantity))
        .collect()
}

async fn balance(svc: &PaymentService) -> i64 {
    svc.get_balance(player("-"), GetBalanceRequest::default())
        .await
        .unwrap()
        .balance
}

/// The ledger's item changes add up to the inventory, as its amounts add up to the balance.
async fn assert_consistent(svc: &PaymentService) {
    let ledger = svc
        .list_transactions(player("-"), ListTransactionsRequest::default())
        .await
        .unwrap()
        .transactions;
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for c in ledger.iter().flat_map(|t| &t.items) {
        *sums.entry(c.sku.clone()).or_default() += i64::from(c.quantity);
    }
    sums.retain(|_, q| *q != 0);
    let inv = inventory(svc).await;
    let held: BTreeMap<String, i64> = inv
        .items
        .iter()
        .chain(&inv.upgrades)
        .map(|i| (i.sku.clone(), i64::from(i.quantity)))
        .collect();
    assert_eq!(sums, held, "inventory = sum of the ledger's item changes");
    assert_eq!(
        ledger.iter().map(|t| t.amount).sum::<i64>(),
        balance(svc).await
    );
}

#[tokio::test]
async fn a_purchase_fills_the_inventory_once_per_key() {
    let (_d, svc, bus) = svc();
    fund(&svc, 1000).await;
    let first = svc
        .purchase(player("buy-1"), buy("draught", 3))
        .await
        .unwrap();
    let inv = first.inventory.unwrap();
    assert_eq!((inv.used, inv.capacity), (3, 10));
    assert_eq!(inv.items[0].name, "Draught");
    let tx = first.transaction.unwrap();
    assert_eq!(tx.items[0].quantity, 3);
    // The retry (a lost answer, a 504) is the same purchase: one charge, one set of items.
    let again = svc
        .purchase(player("buy-1"), buy("draught", 3))
        .await
        .unwrap();
    assert_eq!(again.transaction.unwrap().id, tx.id);
    assert_eq!(balance(&svc).await, 970);
    assert_eq!(held(&svc).await, [("draught".to_owned(), 3)]);
    // Announced on the player's topic, once.
    let events = bus.published.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let (topic, kind, payload, _) = &events[0];
    assert_eq!(
        (topic.as_str(), kind.as_str()),
        (format!("player.{P}").as_str(), "payment.inventory_changed")
    );
    assert_eq!(payload["changes"][0]["sku"], "draught");
    assert_eq!(payload["changes"][0]["quantity"], 3.0);
    assert_eq!(payload["used"], 3.0);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_purchase_that_would_overflow_is_refused_before_money_moves() {
    let (_d, svc, _bus) = svc();
    fund(&svc, 1000).await;
    svc.purchase(player("b1"), buy("draught", 8)).await.unwrap();
    let err = svc
        .purchase(player("b2"), buy("draught", 3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("2 of 10 slots free, 3 needed"),
        "{}",
        err.message()
    );
    assert_eq!(balance(&svc).await, 920, "nothing charged");
    assert_eq!(held(&svc).await, [("draught".to_owned(), 8)]);
    // The refusal did not burn the key: with a chest bought, the same request goes through.
    svc.purchase(player("b3"), buy("chest", 1)).await.unwrap();
    let ok = svc.purchase(player("b2"), buy("draught", 3)).await.unwrap();
    let inv = ok.inventory.unwrap();
    assert_eq!((inv.used, inv.capacity), (11, 15));
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn capacity_upgrades_raise_capacity_up_to_their_max_quantity() {
    let (_d, svc, _bus) = svc();
    fund(&svc, 1000).await;
    let r = svc.purchase(player("c1"), buy("chest", 2)).await.unwrap();
    let inv = r.inventory.unwrap();
    assert_eq!(
        (inv.capacity, inv.used),
        (20, 0),
        "an upgrade fills no slot"
    );
    assert!(inv.items.is_empty());
    assert_eq!(
        (inv.upgrades[0].sku.as_str(), inv.upgrades[0].quantity),
        ("chest", 2)
    );
    // max_quantity bounds what a player owns, not only one purchase.
    let err = svc
        .purchase(player("c2"), buy("chest", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("at most 2 Chest"),
        "{}",
        err.message()
    );
    let err = svc
        .purchase(player("c3"), buy("chest", 3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Granted upgrades count against the same bound.
    let err = svc
        .grant(service("g"), grant(0, &[("chest", 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(balance(&svc).await, 800);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn what_was_used_up_cannot_be_refunded_or_reversed() {
    let (_d, svc, _bus) = svc();
    fund(&svc, 1000).await;
    let buy3 = PurchaseRequest {
        player_id: P.into(),
        ..buy("draught", 3)
    };
    let tx = svc
        .purchase(service("wf-pay"), buy3)
        .await
        .unwrap()
        .transaction
        .unwrap();
    svc.consume(service("drink"), consume("draught", 2))
        .await
        .unwrap();
    let refund = RefundRequest {
        transaction_id: tx.id.clone(),
        player_id: P.into(),
    };
    let err = svc.refund(service("r"), refund).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("used up"), "{}", err.message());
    let reverse = ReverseRequest {
        idempotency_key: "wf-pay".into(),
        reason: "compensation".into(),
        player_id: P.into(),
    };
    let err = svc.reverse(service("undo"), reverse).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(balance(&svc).await, 970, "no money back for items kept");
    assert_eq!(held(&svc).await, [("draught".to_owned(), 1)]);
    // An upgrade whose slots are in use cannot be taken back either.
    let chest = svc
        .purchase(player("chest"), buy("chest", 1))
        .await
        .unwrap();
    svc.purchase(player("more"), buy("draught", 12))
        .await
        .unwrap();
    let refund = RefundRequest {
        transaction_id: chest.transaction.unwrap().id,
        player_id: P.into(),
    };
    let err = svc.refund(service("r2"), refund.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("make room"), "{}", err.message());
    // Once room is made, it can.
    svc.consume(service("drink-3"), consume("draught", 3))
        .await
        .unwrap();
    let ok = svc.refund(service("r2"), refund).await.unwrap();
    let inv = ok.inventory.unwrap();
    assert_eq!((inv.used, inv.capacity), (10, 10));
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_grant_applies_once_per_key_and_is_reversed_whole() {
    let (_d, svc, bus) = svc();
    let g = grant(300, &[("draught", 2), ("sword", 1)]);
    let first = svc
        .grant(service("quest-reward:rats"), g.clone())
        .await
        .unwrap();
    let tx = first.transaction.unwrap();
    assert_eq!(
        (tx.kind(), tx.amount, first.balance),
        (TransactionKind::Grant, 300, 300)
    );
    assert_eq!(first.inventory.unwrap().used, 3);
    let again = svc
        .grant(service("quest-reward:rats"), g.clone())
        .await
        .unwrap();
    assert_eq!(again.transaction.unwrap().id, tx.id);
    assert_eq!(balance(&svc).await, 300);
    assert_eq!(
        held(&svc).await,
        [("draught".to_owned(), 2), ("sword".to_owned(), 1)]
    );
    assert_eq!(bus.published.lock().unwrap().len(), 1);
    // The key is the request's: another grant under it is refused.
    let other = svc
        .grant(service("quest-reward:rats"), grant(301, &[]))
        .await
        .unwrap_err();
    assert_eq!(other.hint(), Some(crate::kit::status::Hint::Unprocessable));
    // A workflow's compensation takes money and items back in one step.
    let undo = ReverseRequest {
        idempotency_key: "quest-reward:rats".into(),
        reason: "Reward withdrawn".into(),
        player_id: P.into(),
    };
    let r = svc.reverse(service("undo"), undo).await.unwrap();
    assert!(r.reversed);
    assert_eq!((r.balance, r.inventory.unwrap().used), (0, 0));
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_grant_that_would_overflow_is_refused_whole() {
    let (_d, svc, _bus) = svc();
    svc.grant(service("g1"), grant(0, &[("draught", 9)]))
        .await
        .unwrap();
    let err = svc
        .grant(service("g2"), grant(500, &[("draught", 1), ("sword", 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("1 of 10 slots free, 2 needed"),
        "{}",
        err.message()
    );
    // Nothing of it landed, and the same key pays in full once there is room.
    assert_eq!(balance(&svc).await, 0);
    svc.consume(service("c"), consume("draught", 1))
        .await
        .unwrap();
    svc.grant(service("g2"), grant(500, &[("draught", 1), ("sword", 1)]))
        .await
        .unwrap();
    assert_eq!(balance(&svc).await, 500);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn consuming_takes_only_what_is_held() {
    let (_d, svc, bus) = svc();
    svc.grant(service("g"), grant(0, &[("draught", 2)]))
        .await
        .unwrap();
    let err = svc
        .consume(service("c1"), consume("draught", 3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("holds 2 Draught, 3 needed"),
        "{}",
        err.message()
    );
    let err = svc
        .consume(service("c2"), consume("sword", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let ok = svc
        .consume(service("c3"), consume("draught", 2))
        .await
        .unwrap();
    let tx = ok.transaction.unwrap();
    assert_eq!(
        (tx.kind(), tx.amount, tx.reason.as_str()),
        (TransactionKind::Consume, 0, "gift:maud-feverfew")
    );
    assert!(
        ok.inventory.unwrap().items.is_empty(),
        "a count of 0 is dropped"
    );
    // The retry consumes nothing more (and is not refused for want of items).
    let again = svc
        .consume(service("c3"), consume("draught", 2))
        .await
        .unwrap();
    assert_eq!(again.transaction.unwrap().id, tx.id);
    let events = bus.published.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].2["changes"][0]["quantity"], -2.0);
    assert_eq!(
        events[1].2["kind"], "TRANSACTION_KIND_CONSUME",
        "enums by name"
    );
    let changed: proto::aicore::payment::v1::InventoryChanged = bus.payload(1);
    assert_eq!(changed.transaction_id, tx.id);
    assert_eq!(changed.changes[0].sku, "draught");
    // Nothing to consume in an upgrade, or in an unknown sku.
    let err = svc
        .consume(service("c4"), consume("chest", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = svc
        .consume(service("c5"), consume("dragon_egg", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_failed_announcement_does_not_undo_the_change() {
    let (_d, svc, bus) = svc();
    *bus.fail.lock().unwrap() = Some(Status::new(Code::Unavailable, "bus down"));
    svc.grant(service("g"), grant(10, &[("draught", 1)]))
        .await
        .unwrap();
    assert_eq!(held(&svc).await, [("draught".to_owned(), 1)]);
    // The retry announces it once the bus is back.
    *bus.fail.lock().unwrap() = None;
    svc.grant(service("g"), grant(10, &[("draught", 1)]))
        .await
        .unwrap();
    assert_eq!(bus.published.lock().unwrap().len(), 1);
    assert_eq!(balance(&svc).await, 10);
}

#[tokio::test]
async fn a_player_sees_only_their_own_inventory() {
    let (_d, svc, _bus) = svc();
    svc.grant(service("g"), grant(0, &[("sword", 1)]))
        .await
        .unwrap();
    // The id comes from the principal: empty means their own; another's is refused.
    let mine = svc
        .get_inventory(
            player("-"),
            GetInventoryRequest {
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(mine.inventory.unwrap().used, 1);
    let err = svc
        .get_inventory(
            player("-"),
            GetInventoryRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let theirs = svc
        .get_inventory(
            crate::kit::testing::player(OTHER),
            GetInventoryRequest {
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        theirs.inventory.unwrap().used,
        0,
        "the other's is their own"
    );
    // A service names the player.
    let err = svc
        .get_inventory(service("-"), GetInventoryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let named = svc
        .get_inventory(
            service("-"),
            GetInventoryRequest {
                player_id: P.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(named.inventory.unwrap().used, 1);
}

#[tokio::test]
async fn players_cannot_grant_or_consume_and_bad_input_is_refused() {
    let (_d, svc, _bus) = svc();
    let err = svc.grant(player("g"), grant(1, &[])).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = svc
        .consume(player("c"), consume("draught", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let bad_grants = [
        (grant(-1, &[]), Code::InvalidArgument),
        (grant(MAX_AMOUNT + 1, &[]), Code::InvalidArgument),
        (grant(0, &[]), Code::InvalidArgument),
        (grant(0, &[("draught", 0)]), Code::InvalidArgument),
        (grant(0, &[("draught", 1001)]), Code::InvalidArgument),
        (grant(0, &[("draught", u32::MAX)]), Code::InvalidArgument),
        (
            grant(0, &[("draught", 1), ("draught", 1)]),
            Code::InvalidArgument,
        ),
        (grant(0, &[("Dragon Egg", 1)]), Code::InvalidArgument),
        (grant(0, &[("dragon_egg", 1)]), Code::NotFound),
        (
            GrantRequest {
                items: (0..17)
                    .map(|_| ItemGrant {
                        sku: "sword".into(),
                        quantity: 1,
                    })
                    .collect(),
                ..grant(0, &[])
            },
            Code::InvalidArgument,
        ),
        (
            GrantRequest {
                reason: String::new(),
                ..grant(1, &[])
            },
            Code::InvalidArgument,
        ),
    ];
    for (i, (req, code)) in bad_grants.into_iter().enumerate() {
        let err = svc
            .grant(service(&format!("bad-{i}")), req)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "case {i}: {}", err.message());
    }
    for (req, code) in [
        (consume("draught", 0), Code::InvalidArgument),
        (consume("draught", 1001), Code::InvalidArgument),
        (consume("draught", u32::MAX), Code::InvalidArgument),
        (consume("../draught", 1), Code::InvalidArgument),
        (
            ConsumeRequest {
                player_id: "not-a-player".into(),
                ..consume("draught", 1)
            },
            Code::InvalidArgument,
        ),
    ] {
        let err = svc.consume(service("bad"), req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
    }
    // A purchase of a huge quantity, or of nothing known, moves nothing.
    fund(&svc, 1000).await;
    let err = svc
        .purchase(player("p1"), buy("draught", u32::MAX))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = svc
        .purchase(player("p2"), buy("dragon_egg", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Without an Idempotency-Key nothing applies.
    let err = svc
        .grant(crate::kit::testing::service("game"), grant(5, &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(balance(&svc).await, 1000);
    assert!(held(&svc).await.is_empty());
}

#[test]
fn the_shipped_catalog_has_room_for_what_a_player_starts_with() {
    let c = Catalog::embedded().unwrap();
    for item in c.items().filter(|i| !i.is_upgrade()) {
        assert!(
            item.max_quantity <= c.base_capacity,
            "{} cannot be bought in one go into a new inventory",
            item.sku
        );
    }
}
