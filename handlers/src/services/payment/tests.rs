use super::*;
use crate::kit::content::Content as _;
use crate::kit::status::{Code, Hint};

const P: &str = "0123456789abcdef0123456789abcdef";

fn svc() -> (tempfile::TempDir, Arc<dyn Store>, PaymentService) {
    let (dir, store) = crate::kit::testing::temp_store();
    let svc = PaymentService::new(Arc::clone(&store), test_catalog());
    (dir, store, svc)
}

fn service(key: &str) -> Context {
    crate::kit::testing::keyed(crate::kit::testing::service("game"), key)
}

fn player(key: &str) -> Context {
    crate::kit::testing::keyed(crate::kit::testing::player(P), key)
}

fn credit(amount: i64) -> CreditRequest {
    CreditRequest {
        player_id: P.into(),
        amount,
        reason: "quest reward".into(),
    }
}

/// `unit` costs 1, so `purchase(n)` spends n; `crown` costs 250.
fn test_catalog() -> Arc<Catalog> {
    // Room for everything these tests buy; the inventory's limits are tested in inventory_tests.
    let text = "[inventory]\nbase_capacity = 100000\n\
                [[item]]\nsku = \"unit\"\nname = \"Unit\"\ndescription = \"Costs one.\"\nprice = 1\nmax_quantity = 1000\nkind = \"stackable\"\n\
                [[item]]\nsku = \"crown\"\nname = \"Crown\"\ndescription = \"Costs 250.\"\nprice = 250\nmax_quantity = 3\nkind = \"stackable\"\n";
    Arc::new(Catalog::parse(&crate::kit::content::Source::embedded("test.toml", text)).unwrap())
}

fn purchase(quantity: u32) -> PurchaseRequest {
    PurchaseRequest {
        sku: "unit".into(),
        quantity,
        player_id: String::new(),
    }
}

async fn balance(svc: &PaymentService) -> i64 {
    svc.get_balance(player("-"), GetBalanceRequest::default())
        .await
        .unwrap()
        .balance
}

async fn ledger(svc: &PaymentService) -> Vec<Transaction> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = svc
            .list_transactions(
                player("-"),
                ListTransactionsRequest {
                    limit: 7,
                    cursor,
                    player_id: String::new(),
                },
            )
            .await
            .unwrap();
        all.extend(page.transactions);
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

async fn assert_consistent(svc: &PaymentService) {
    let ledger = ledger(svc).await;
    let sum: i64 = ledger.iter().map(|t| t.amount).sum();
    assert_eq!(sum, balance(svc).await, "balance = sum of the ledger");
    for (i, t) in ledger.iter().enumerate() {
        assert_eq!(t.id, format!("tx-{}", i + 1), "ledger has no holes");
    }
}

#[tokio::test]
async fn credit_purchase_refund() {
    let (_d, _s, svc) = svc();
    let c = svc.credit(service("c1"), credit(500)).await.unwrap();
    assert_eq!(c.balance, 500);
    let tx = c.transaction.unwrap();
    assert_eq!(
        (tx.id.as_str(), tx.amount, tx.kind()),
        ("tx-1", 500, TransactionKind::Credit)
    );
    let p = svc.purchase(player("p1"), purchase(200)).await.unwrap();
    assert_eq!(p.balance, 300);
    let bought = p.transaction.unwrap();
    assert_eq!((bought.amount, bought.balance_after), (-200, 300));
    let r = svc
        .refund(
            service("r1"),
            RefundRequest {
                transaction_id: bought.id.clone(),
                player_id: P.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.balance, 500);
    assert_eq!(r.transaction.unwrap().refunds_transaction_id, bought.id);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn balance_never_goes_negative() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c"), credit(100)).await.unwrap();
    let err = svc.purchase(player("p"), purchase(101)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("100 available"), "{}", err.message());
    assert_eq!(balance(&svc).await, 100);
    // The failed attempt did not burn the key: the same key works once funds are there.
    svc.credit(service("c2"), credit(1)).await.unwrap();
    assert_eq!(
        svc.purchase(player("p"), purchase(101))
            .await
            .unwrap()
            .balance,
        0
    );
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_key_applies_once_and_cannot_be_reused_for_another_request() {
    let (_d, _s, svc) = svc();
    let first = svc.credit(service("k"), credit(50)).await.unwrap();
    let again = svc.credit(service("k"), credit(50)).await.unwrap();
    assert_eq!(first, again, "a retry returns the first result");
    assert_eq!(balance(&svc).await, 50);
    let err = svc.credit(service("k"), credit(51)).await.unwrap_err();
    assert_eq!(err.hint(), Some(Hint::Unprocessable));
    // Keys are per caller: the player's "k" is not the game server's, and cannot replay,
    // reverse or bar it.
    svc.purchase(player("k"), purchase(1)).await.unwrap();
    assert_eq!(balance(&svc).await, 49);
    let err = svc.purchase(player("k"), purchase(2)).await.unwrap_err();
    assert_eq!(err.hint(), Some(Hint::Unprocessable));
    let mut other = service("undo-k");
    other.principal = Some(Principal::Service {
        name: "other-game".into(),
        scopes: vec!["*".into()].into(),
    });
    let r = svc.reverse(other, reverse("k")).await.unwrap();
    assert!(!r.reversed, "another caller's key is not this one's");
    assert_eq!(balance(&svc).await, 49);
}

#[tokio::test]
async fn mutations_need_a_key_and_the_right_principal() {
    let (_d, _s, svc) = svc();
    let mut ctx = service("x");
    ctx.idempotency_key = None;
    let err = svc.credit(ctx, credit(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = svc.credit(player("x"), credit(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    for bad in [0, -5, MAX_AMOUNT + 1] {
        let err = svc.credit(service("x"), credit(bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    let err = svc
        .purchase(
            player("x"),
            PurchaseRequest {
                sku: String::new(),
                ..purchase(1)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(balance(&svc).await, 0);
}

#[tokio::test]
async fn refunds_only_purchases_and_only_once() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c"), credit(100)).await.unwrap();
    let refund = |key: &'static str, id: &'static str| {
        let svc = svc.clone();
        async move {
            svc.refund(
                service(key),
                RefundRequest {
                    transaction_id: id.into(),
                    player_id: P.into(),
                },
            )
            .await
        }
    };
    assert_eq!(
        refund("r0", "tx-1").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        refund("r0", "tx-9").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        refund("r0", "nope").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    svc.purchase(player("p"), purchase(60)).await.unwrap();
    // Two different refunds of the same purchase race: exactly one wins.
    let (a, b) = tokio::join!(refund("r1", "tx-2"), refund("r2", "tx-2"));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let loser = a.err().or(b.err()).unwrap();
    assert!(
        loser.message().contains("already refunded"),
        "{}",
        loser.message()
    );
    assert_eq!(balance(&svc).await, 100);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn twenty_parallel_identical_requests_charge_once() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c"), credit(1000)).await.unwrap();
    let results = futures_util::future::join_all(
        (0..20).map(|_| svc.purchase(player("same"), purchase(300))),
    )
    .await;
    let ids: std::collections::HashSet<_> = results
        .into_iter()
        .map(|r| r.unwrap().transaction.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1, "every caller sees the one transaction");
    assert_eq!(balance(&svc).await, 700);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn parallel_purchases_never_overdraw() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c"), credit(1000)).await.unwrap();
    let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
    let results =
        futures_util::future::join_all(keys.iter().map(|k| svc.purchase(player(k), purchase(100))))
            .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 10, "exactly the affordable purchases succeed");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), Code::FailedPrecondition, "{r:?}");
    }
    assert_eq!(balance(&svc).await, 0);
    assert_consistent(&svc).await;
}

#[tokio::test]
async fn a_commit_whose_settling_was_lost_is_settled_by_the_next_call() {
    let (_d, store, svc) = svc();
    svc.credit(service("c"), credit(10)).await.unwrap();
    // Simulate a crash right after the commit of tx-2: the account has it, the ledger does not.
    let (account, version) = svc.account(P).await.unwrap();
    let tx = Transaction {
        id: "tx-2".into(),
        kind: TransactionKind::Credit.into(),
        amount: 5,
        balance_after: 15,
        reason: "lost".into(),
        ..Transaction::default()
    };
    let next = Account {
        bar: None,
        stock: account.stock.clone(),
        balance: 15,
        seq: 2,
        last: Some(Applied {
            tx,
            key: key_hash(&service("crashed"), "crashed"),
            fingerprint: Op::Credit {
                amount: 5,
                reason: "lost".into(),
            }
            .fingerprint(),
        }),
    };
    assert_eq!(account.seq, 1);
    store
        .put(&account_key(P), to_json(&next).unwrap(), Some(version))
        .await
        .unwrap();
    assert_consistent(&svc).await;
    // The retry of the crashed request finds it applied.
    let retry = svc
        .credit(
            service("crashed"),
            CreditRequest {
                reason: "lost".into(),
                ..credit(5)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (retry.transaction.unwrap().id.as_str(), retry.balance),
        ("tx-2", 15)
    );
    assert_eq!(balance(&svc).await, 15);
}

#[test]
fn transaction_ids_have_one_form() {
    assert_eq!(parse_tx_id("tx-2"), Some(2));
    assert_eq!(parse_tx_id("tx-18446744073709551615"), Some(u64::MAX));
    for bad in [
        "tx-+2",
        "tx-02",
        "tx-0",
        "tx-",
        "tx- 2",
        "tx-2 ",
        "TX-2",
        "tx--2",
        "tx-1e3",
        "2",
        "tx-18446744073709551616",
    ] {
        assert_eq!(parse_tx_id(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn prices_come_from_the_catalog() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c"), credit(1000)).await.unwrap();
    let buy = |key: &'static str, sku: &str, quantity: u32| {
        svc.purchase(
            player(key),
            PurchaseRequest {
                sku: sku.into(),
                quantity,
                player_id: String::new(),
            },
        )
    };
    let tx = buy("a", "crown", 2).await.unwrap().transaction.unwrap();
    assert_eq!(
        (tx.amount, tx.quantity, tx.sku.as_str()),
        (-500, 2, "crown")
    );
    // 0 means one.
    assert_eq!(buy("b", "crown", 0).await.unwrap().balance, 250);
    assert_eq!(
        buy("c", "crown", 4).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        buy("d", "sword", 1).await.unwrap_err().code(),
        Code::NotFound
    );
    for bad in [
        "",
        "Crown",
        "crown\u{0}",
        "x".repeat(65).as_str(),
        "../crown",
    ] {
        assert_eq!(
            buy("e", bad, 1).await.unwrap_err().code(),
            Code::InvalidArgument,
            "{bad:?}"
        );
    }
    assert_eq!(balance(&svc).await, 250);
    assert_eq!(
        svc.list_catalog(player("-"), ListCatalogRequest {})
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    // Reasons are printable and bounded.
    for bad in ["line\nbreak", "\u{202E}evil", "   ", &"r".repeat(201)] {
        let mut req = credit(1);
        req.reason = bad.to_owned();
        assert_eq!(
            svc.credit(service("f"), req).await.unwrap_err().code(),
            Code::InvalidArgument,
            "{bad:?}"
        );
    }
}

fn reverse(key: &str) -> ReverseRequest {
    ReverseRequest {
        idempotency_key: key.into(),
        reason: "workflow compensation".into(),
        player_id: P.into(),
    }
}

#[tokio::test]
async fn reverse_undoes_a_credit_once_and_a_repeat_replays() {
    let (_d, _s, svc) = svc();
    svc.credit(service("c1"), credit(500)).await.unwrap();
    let r = svc
        .reverse(service("undo-c1"), reverse("c1"))
        .await
        .unwrap();
    assert!(r.reversed);
    let tx = r.transaction.unwrap();
    assert_eq!(tx.kind(), TransactionKind::Reversal);
    assert_eq!((tx.amount, r.balance), (-500, 0));
    assert_eq!(tx.refunds_transaction_id, "tx-1");
    // The same reversal again replays; another key for the same credit is refused.
    let again = svc
        .reverse(service("undo-c1"), reverse("c1"))
        .await
        .unwrap();
    assert_eq!(again.transaction.unwrap().id, tx.id);
    let other = svc
        .reverse(service("undo-c1-b"), reverse("c1"))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition);
    // A retry of the credit replays it rather than crediting again.
    svc.credit(service("c1"), credit(500)).await.unwrap();
    assert_eq!(balance(&svc).await, 0);
    assert_eq!(ledger(&svc).await.len(), 2);
}

#[tokio::test]
async fn reversing_what_never_applied_is_a_no_op_that_bars_the_key() {
    let (_d, _s, svc) = svc();
    svc.credit(service("seed"), credit(100)).await.unwrap();
    let r = svc
        .reverse(service("undo-late"), reverse("late"))
        .await
        .unwrap();
    assert!(!r.reversed);
    assert!(r.transaction.is_none());
    assert_eq!(r.balance, 100);
    // The credit arriving after its compensation never lands.
    let late = svc.credit(service("late"), credit(700)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{}", late.message());
    assert_eq!(balance(&svc).await, 100);
    assert_eq!(ledger(&svc).await.len(), 1);
    // The reversal's retry still says nothing was reversed.
    let again = svc
        .reverse(service("undo-late"), reverse("late"))
        .await
        .unwrap();
    assert!(!again.reversed);
}

#[tokio::test]
async fn reverse_is_for_services_and_respects_the_balance() {
    let (_d, _s, svc) = svc();
    let mut ctx = player("undo");
    ctx.idempotency_key = Some("undo".into());
    let denied = svc
        .reverse(
            ctx,
            ReverseRequest {
                player_id: String::new(),
                ..reverse("x")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // A credit already spent cannot be reversed below zero.
    svc.credit(service("c"), credit(10)).await.unwrap();
    // Bought by a service for the player (a workflow's step): the same caller undoes it.
    svc.purchase(
        service("buy"),
        PurchaseRequest {
            player_id: P.into(),
            ..purchase(8)
        },
    )
    .await
    .unwrap();
    let err = svc
        .reverse(service("undo-c"), reverse("c"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(balance(&svc).await, 2);
    // A purchase reversed is refunded, and cannot be refunded again.
    let undo = svc
        .reverse(service("undo-buy"), reverse("buy"))
        .await
        .unwrap();
    assert_eq!(undo.balance, 10);
    let refund = svc
        .refund(
            service("refund-buy"),
            RefundRequest {
                transaction_id: "tx-2".into(),
                player_id: P.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refund.code(), Code::FailedPrecondition);
    // Its own key may not be the key it undoes.
    let same = svc.reverse(service("c"), reverse("c")).await.unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);
}
