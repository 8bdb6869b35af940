//! `aicore.payment.v1.PaymentService`: a per-player ledger in integer minor units.
//!
//! Store layout, per player `<p>`:
//! - `payment.<p>.account`: the balance, the inventory (item counts, upgrades, capacity), the last
//!   sequence number and the last transaction. This document is the commit point: a mutation is
//!   one compare-and-set on it, so money and items always move together.
//! - `payment.<p>.tx.<seq>`: the ledger, one entry per transaction.
//! - `payment.<p>.key.<sha256(caller, Idempotency-Key)>`: the transaction a key produced.
//! - `payment.<p>.refunded.<seq>`: the refund of a purchase, or the reversal of a credit or
//!   purchase.
//!
//! `Reverse` undoes what an Idempotency-Key applied. A key that applied nothing is *barred*: its
//! key record says so (sequence 0), and a later call with it is refused. Barring commits through
//! the account like a transaction, so it cannot race the call it bars.
//!
//! The ledger entry, key record and refund marker of the last transaction are written right after
//! the commit and, should the process die in between, by the next call for that player
//! ("settling"). So every call sees a complete ledger, racing calls serialize on the account's
//! version, a key that was applied is found on every retry (also after a 504 or on another
//! replica), and the balance always equals the sum of the ledger.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::payment::v1::{
    CatalogItem, ConsumeRequest, ConsumeResponse, CreditRequest, CreditResponse, GetBalanceRequest,
    GetBalanceResponse, GetInventoryRequest, GetInventoryResponse, GrantRequest, GrantResponse,
    ItemChange, ListCatalogRequest, ListCatalogResponse, ListTransactionsRequest,
    ListTransactionsResponse, PaymentServiceHandler, PurchaseRequest, PurchaseResponse,
    RefundRequest, RefundResponse, ReverseRequest, ReverseResponse, Transaction, TransactionKind,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest as _, Sha256};

use crate::kit::calls::Caller;
use crate::kit::context::{Context, Principal};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

pub mod content;
pub use content::{Catalog, Item};

mod inventory;
pub use inventory::*;
mod ledger;
mod localized;
pub use ledger::*;

impl PaymentServiceHandler for PaymentService {
    type Context = Context;
    type Error = Status;

    async fn credit(&self, ctx: Context, req: CreditRequest) -> Result<CreditResponse, Status> {
        require_service(&ctx, "Credit")?;
        let p = ctx.player(&req.player_id)?;
        let amount = check_amount(req.amount)?;
        check_text("reason", &req.reason, true)?;
        let op = Op::Credit {
            amount,
            reason: req.reason,
        };
        let (tx, balance, _) = self.apply(&ctx, &p, op).await?.transaction()?;
        Ok(CreditResponse {
            transaction: Some(tx),
            balance,
        })
    }

    async fn purchase(
        &self,
        ctx: Context,
        req: PurchaseRequest,
    ) -> Result<PurchaseResponse, Status> {
        let p = ctx.player(&req.player_id)?;
        let item = catalog_item(&self.catalog, &req.sku)?;
        let quantity = req.quantity.max(1);
        if quantity > item.max_quantity {
            return Err(Status::invalid_argument(format!(
                "quantity must be 1 to {} for {}",
                item.max_quantity, item.sku
            )));
        }
        let amount = check_amount(item.price.saturating_mul(i64::from(quantity)))?;
        let op = Op::Purchase {
            sku: req.sku,
            quantity,
            amount,
        };
        let (tx, balance, stock) = self.apply(&ctx, &p, op).await?.transaction()?;
        Ok(PurchaseResponse {
            transaction: Some(tx),
            balance,
            inventory: Some(self.inventory(&stock)),
        })
    }

    async fn refund(&self, ctx: Context, req: RefundRequest) -> Result<RefundResponse, Status> {
        require_service(&ctx, "Refund")?;
        let p = ctx.player(&req.player_id)?;
        let target = parse_tx_id(&req.transaction_id).ok_or_else(|| {
            Status::invalid_argument("transactionId must be an id like tx-12 from this ledger")
        })?;
        let (tx, balance, stock) = self
            .apply(&ctx, &p, Op::Refund { target })
            .await?
            .transaction()?;
        Ok(RefundResponse {
            transaction: Some(tx),
            balance,
            inventory: Some(self.inventory(&stock)),
        })
    }

    async fn reverse(&self, ctx: Context, req: ReverseRequest) -> Result<ReverseResponse, Status> {
        require_service(&ctx, "Reverse")?;
        let p = ctx.player(&req.player_id)?;
        if req.idempotency_key.is_empty() || req.idempotency_key.len() > 255 {
            return Err(Status::invalid_argument(
                "idempotencyKey must be the 1 to 255 character key of the payment to undo",
            ));
        }
        check_text("reason", &req.reason, true)?;
        let target = key_hash(&ctx, &req.idempotency_key);
        let own = ctx.idempotency_key.as_deref().map(|k| key_hash(&ctx, k));
        if own.as_deref() == Some(target.as_str()) {
            return Err(Status::invalid_argument(
                "a reversal needs its own Idempotency-Key, not the key it undoes",
            ));
        }
        let op = Op::Reverse {
            target,
            reason: req.reason,
        };
        Ok(match self.apply(&ctx, &p, op).await? {
            Outcome::Applied(tx, balance, stock) => ReverseResponse {
                transaction: Some(tx),
                balance,
                reversed: true,
                inventory: Some(self.inventory(&stock)),
            },
            Outcome::Barred(balance, stock) => ReverseResponse {
                transaction: None,
                balance,
                reversed: false,
                inventory: Some(self.inventory(&stock)),
            },
        })
    }

    async fn list_catalog(
        &self,
        ctx: Context,
        _: ListCatalogRequest,
    ) -> Result<ListCatalogResponse, Status> {
        let reader = self.reader(&ctx, None).await;
        Ok(ListCatalogResponse {
            items: self
                .catalog
                .items()
                .map(|i| {
                    let item = CatalogItem {
                        sku: i.sku.clone(),
                        name: i.name.clone(),
                        description: i.description.clone(),
                        price: i.price,
                        max_quantity: i.max_quantity,
                        capacity: i.capacity,
                    };
                    localized::catalog_item(item, &reader)
                })
                .collect(),
            locale: reader.locale().to_owned(),
        })
    }

    async fn get_inventory(
        &self,
        ctx: Context,
        req: GetInventoryRequest,
    ) -> Result<GetInventoryResponse, Status> {
        // A player's own id, whatever the request says (another's is refused); a service names one.
        let p = ctx.player(&req.player_id)?;
        let (account, _) = self.account(&p).await?;
        let reader = self.reader(&ctx, Some(&p)).await;
        Ok(GetInventoryResponse {
            inventory: Some(localized::inventory(
                self.inventory(&account.stock),
                &reader,
            )),
            locale: reader.locale().to_owned(),
        })
    }

    async fn grant(&self, ctx: Context, req: GrantRequest) -> Result<GrantResponse, Status> {
        require_service(&ctx, "Grant")?;
        let p = ctx.player(&req.player_id)?;
        if !(0..=MAX_AMOUNT).contains(&req.currency) {
            return Err(Status::invalid_argument(format!(
                "currency must be 0 to {MAX_AMOUNT} minor units"
            )));
        }
        let items = check_grants(&self.catalog, req.items)?;
        if req.currency == 0 && items.is_empty() {
            return Err(Status::invalid_argument(
                "a grant needs currency, items or both",
            ));
        }
        check_text("reason", &req.reason, true)?;
        let op = Op::Grant {
            currency: req.currency,
            items,
            reason: req.reason,
        };
        // Keyed like Credit: by the caller's Idempotency-Key (the quest completion, the workflow
        // step), so a retried reward lands once.
        let (tx, balance, stock) = self.apply(&ctx, &p, op).await?.transaction()?;
        Ok(GrantResponse {
            transaction: Some(tx),
            balance,
            inventory: Some(self.inventory(&stock)),
        })
    }

    async fn consume(&self, ctx: Context, req: ConsumeRequest) -> Result<ConsumeResponse, Status> {
        require_service(&ctx, "Consume")?;
        let p = ctx.player(&req.player_id)?;
        if !content::valid_sku(&req.sku) {
            return Err(Status::invalid_argument(format!(
                "sku must be 1 to {} lowercase letters, digits or '_'",
                content::MAX_SKU
            )));
        }
        let quantity = check_quantity(req.quantity)?;
        check_text("reason", &req.reason, true)?;
        match self.catalog.get(&req.sku) {
            Some(item) if item.is_upgrade() => {
                return Err(Status::invalid_argument(format!(
                    "{} is a capacity upgrade; it cannot be used up",
                    item.sku
                )));
            }
            Some(_) => {}
            // Held items of a sku the catalog dropped can still be used up; anything else is
            // unknown.
            None => {
                let (account, _) = self.account(&p).await?;
                if account.stock.held(&req.sku) == 0 {
                    return Err(Status::not_found(format!(
                        "no item {:?} in the catalog",
                        req.sku
                    )));
                }
            }
        }
        let op = Op::Consume {
            sku: req.sku,
            quantity,
            reason: req.reason,
        };
        let (tx, _, stock) = self.apply(&ctx, &p, op).await?.transaction()?;
        Ok(ConsumeResponse {
            transaction: Some(tx),
            inventory: Some(self.inventory(&stock)),
        })
    }

    async fn get_balance(
        &self,
        ctx: Context,
        req: GetBalanceRequest,
    ) -> Result<GetBalanceResponse, Status> {
        let p = ctx.player(&req.player_id)?;
        let (account, _) = self.account(&p).await?;
        Ok(GetBalanceResponse {
            balance: account.balance,
        })
    }

    async fn list_transactions(
        &self,
        ctx: Context,
        req: ListTransactionsRequest,
    ) -> Result<ListTransactionsResponse, Status> {
        let p = ctx.player(&req.player_id)?;
        let limit = match req.limit {
            0 => 50,
            n @ 1..=100 => n as usize,
            _ => return Err(Status::invalid_argument("limit must be 0 to 100")),
        };
        let after = if req.cursor.is_empty() {
            None
        } else {
            let seq = parse_tx_id(&req.cursor).ok_or_else(|| {
                Status::invalid_argument("cursor is not a cursor from ListTransactions")
            })?;
            Some(tx_key(&p, seq))
        };
        let (account, _) = self.account(&p).await?;
        if let Some(last) = &account.last {
            self.settle(&p, last).await?;
        }
        let page = self
            .store
            .list(&format!("payment.{p}.tx."), after.as_deref(), limit)
            .await?;
        let transactions = page
            .entries
            .iter()
            .map(|(key, v)| {
                serde_json::from_slice::<Transaction>(&v.value)
                    .map_err(|e| Status::internal(format!("corrupt record {key}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (page.next_after, transactions.last()) {
            (Some(_), Some(last)) => last.id.clone(),
            _ => String::new(),
        };
        Ok(ListTransactionsResponse {
            transactions,
            next_cursor,
        })
    }
}

// Input checks every handler shares.

pub(super) fn check_amount(amount: i64) -> Result<i64, Status> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(Status::invalid_argument(format!(
            "amount must be 1 to {MAX_AMOUNT} minor units"
        )))
    }
}

/// Text that reaches ledgers and support tools: printable (no control or format characters such
/// as bidi overrides), at most `MAX_TEXT` characters.
pub(super) fn check_text(name: &str, value: &str, required: bool) -> Result<(), Status> {
    if required && value.trim().is_empty() {
        return Err(Status::invalid_argument(format!("{name} is required")));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(Status::invalid_argument(format!(
            "{name} must be at most {MAX_TEXT} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(Status::invalid_argument(format!(
            "{name} must be printable text (no control or direction characters)"
        )));
    }
    Ok(())
}

/// Unicode format characters that change how text reads (bidi overrides, zero-width marks).
pub(super) fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

pub(super) fn require_service(ctx: &Context, what: &str) -> Result<(), Status> {
    match ctx.principal {
        Some(Principal::Service { .. }) => Ok(()),
        Some(Principal::Player { .. }) => Err(Status::permission_denied(format!(
            "{what} is for game services only"
        ))),
        None => Err(Status::unauthenticated("authentication required")),
    }
}

#[cfg(test)]
mod inventory_tests;
#[cfg(test)]
mod tests;
