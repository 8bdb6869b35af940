//! The inventory: item counts by sku and capacity upgrades, kept in the account document beside
//! the balance (so a purchase, grant, refund or consumption moves money and items in one
//! compare-and-set), and announced on the player's topic when it changes.
//!
//! Capacity is counted in slots: every unit of a stackable item fills one slot; a capacity
//! upgrade fills none and adds its `capacity` slots per unit to the catalog's base capacity.

use std::collections::BTreeMap;

use proto::aicore::payment::v1::{Inventory, InventoryChanged, InventoryItem, ItemGrant};

use super::*;
use crate::kit::event_log::typed_event;

/// Most distinct skus in one grant.
pub const MAX_GRANT_ITEMS: usize = 16;

/// What a player holds. Counts are never zero (a sku used up is removed) and never negative.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// Stackable items by sku.
    #[serde(default)]
    pub(super) items: BTreeMap<String, u32>,
    /// Capacity upgrades owned, by sku.
    #[serde(default)]
    pub(super) upgrades: BTreeMap<String, u32>,
    /// Slots the upgrades add, as recorded by the transactions that bought them.
    #[serde(default)]
    pub(super) bonus: u64,
}

impl Stock {
    /// Units of stackable `sku` held.
    pub(super) fn held(&self, sku: &str) -> u32 {
        self.items.get(sku).copied().unwrap_or(0)
    }

    /// Slots filled.
    pub(super) fn used(&self) -> u64 {
        self.items.values().map(|&q| u64::from(q)).sum()
    }

    /// Slots in all.
    pub(super) fn capacity(&self, base: u32) -> u64 {
        u64::from(base).saturating_add(self.bonus)
    }
}

/// The changes that undo `changes`.
pub(super) fn negated(changes: &[ItemChange]) -> Vec<ItemChange> {
    changes
        .iter()
        .map(|c| ItemChange {
            quantity: c.quantity.saturating_neg(),
            ..c.clone()
        })
        .collect()
}

/// A request's item list, checked: catalog skus, each once, 1 to `MAX_QUANTITY` units.
pub(super) fn check_grants(
    catalog: &Catalog,
    items: Vec<ItemGrant>,
) -> Result<Vec<(String, u32)>, Status> {
    if items.len() > MAX_GRANT_ITEMS {
        return Err(Status::invalid_argument(format!(
            "a grant names at most {MAX_GRANT_ITEMS} items"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    items
        .into_iter()
        .map(|i| {
            let item = catalog_item(catalog, &i.sku)?;
            check_quantity(i.quantity)?;
            if !seen.insert(i.sku.clone()) {
                return Err(Status::invalid_argument(format!(
                    "{} is listed twice; name each sku once with its total",
                    item.sku
                )));
            }
            Ok((i.sku, i.quantity))
        })
        .collect()
}

/// The catalog's item `sku`: `invalid_argument` for a malformed sku, `not_found` for an unknown one.
pub(super) fn catalog_item<'c>(catalog: &'c Catalog, sku: &str) -> Result<&'c Item, Status> {
    if !content::valid_sku(sku) {
        return Err(Status::invalid_argument(format!(
            "sku must be 1 to {} lowercase letters, digits or '_' (see ListCatalog)",
            content::MAX_SKU
        )));
    }
    catalog
        .get(sku)
        .ok_or_else(|| Status::not_found(format!("no item {sku:?} in the catalog")))
}

/// A quantity a service names: 1 to `MAX_QUANTITY` (0 is not "one" here: a service says what it
/// means).
pub(super) fn check_quantity(quantity: u32) -> Result<u32, Status> {
    if (1..=content::MAX_QUANTITY).contains(&quantity) {
        Ok(quantity)
    } else {
        Err(Status::invalid_argument(format!(
            "quantity must be 1 to {}",
            content::MAX_QUANTITY
        )))
    }
}

impl PaymentService {
    /// The display name of `sku` (the sku itself if the catalog no longer lists it).
    pub(super) fn name(&self, sku: &str) -> String {
        self.catalog
            .get(sku)
            .map_or_else(|| sku.to_owned(), |i| i.name.clone())
    }

    /// The inventory change of adding `quantity` units of catalog item `sku`.
    pub(super) fn change(&self, sku: &str, quantity: u32) -> Result<ItemChange, Status> {
        let item = self
            .catalog
            .get(sku)
            .ok_or_else(|| Status::not_found(format!("no item {sku:?} in the catalog")))?;
        Ok(ItemChange {
            sku: sku.to_owned(),
            quantity: i32::try_from(quantity).map_err(Status::internal)?,
            capacity: item.capacity,
        })
    }

    /// `stock` after `changes`, or why the inventory cannot take them: no count below zero (what
    /// would be taken back was used up), no upgrade beyond its `max_quantity`, and no more slots
    /// filled than there are. The overflow is `failed_precondition`, not `resource_exhausted`: it
    /// is the player's state that must change (make room), and retrying as is never helps.
    pub(super) fn restock(&self, stock: &Stock, changes: &[ItemChange]) -> Result<Stock, Status> {
        let base = self.catalog.base_capacity;
        let mut next = stock.clone();
        for c in changes {
            let upgrade = c.capacity > 0;
            let counts = if upgrade {
                &mut next.upgrades
            } else {
                &mut next.items
            };
            let have = i64::from(counts.get(&c.sku).copied().unwrap_or(0));
            let now = have + i64::from(c.quantity);
            let name = self.name(&c.sku);
            if now < 0 {
                return Err(Status::failed_precondition(format!(
                    "the player holds {have} {name} and {} would be taken back: the rest were used up",
                    -c.quantity
                )));
            }
            if upgrade
                && c.quantity > 0
                && let Some(item) = self.catalog.get(&c.sku)
                && now > i64::from(item.max_quantity)
            {
                return Err(Status::failed_precondition(format!(
                    "a player can own at most {} {name}; this one has {have}",
                    item.max_quantity
                )));
            }
            let now = u32::try_from(now).map_err(|_| {
                Status::failed_precondition(format!("the player cannot hold that many {name}"))
            })?;
            if now == 0 {
                counts.remove(&c.sku);
            } else {
                counts.insert(c.sku.clone(), now);
            }
            if upgrade {
                let slots = i64::from(c.quantity) * i64::from(c.capacity);
                let bonus = i64::try_from(next.bonus).unwrap_or(i64::MAX) + slots;
                next.bonus = u64::try_from(bonus).unwrap_or(0);
            }
        }
        let (used, capacity) = (next.used(), next.capacity(base));
        if used > capacity {
            if capacity < stock.capacity(base) {
                return Err(Status::failed_precondition(format!(
                    "taking the upgrade back would leave {used} items in {capacity} slots; the player must make room first"
                )));
            }
            // Only what adds items is refused: a player over capacity (the base was lowered) can
            // still use items up.
            if used > stock.used() {
                return Err(Status::failed_precondition(format!(
                    "not enough room in the inventory: {} of {} slots free, {} needed",
                    stock.capacity(base).saturating_sub(stock.used()),
                    stock.capacity(base),
                    used - stock.used()
                )));
            }
        }
        Ok(next)
    }

    /// The inventory as clients see it.
    pub(super) fn inventory(&self, stock: &Stock) -> Inventory {
        let list = |counts: &BTreeMap<String, u32>| {
            counts
                .iter()
                .map(|(sku, &quantity)| {
                    let item = self.catalog.get(sku);
                    InventoryItem {
                        sku: sku.clone(),
                        name: item.map_or_else(|| sku.clone(), |i| i.name.clone()),
                        quantity,
                        description: item.map(|i| i.description.clone()).unwrap_or_default(),
                    }
                })
                .collect()
        };
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Inventory {
            items: list(&stock.items),
            capacity: clamp(stock.capacity(self.catalog.base_capacity)),
            used: clamp(stock.used()),
            upgrades: list(&stock.upgrades),
        }
    }

    /// Publishes `payment.inventory_changed` on the player's topic for a committed transaction
    /// that moved items, keyed by the transaction so a retry publishes it once. The change is
    /// committed already: a failed publish is logged and never undoes or fails it (the client
    /// reads GetInventory when it reconnects).
    pub(super) async fn announce(&self, ctx: &Context, p: &str, tx: &Transaction, stock: &Stock) {
        if tx.items.is_empty() {
            return;
        }
        let inventory = self.inventory(stock);
        let event = InventoryChanged {
            transaction_id: tx.id.clone(),
            kind: tx.kind,
            reason: tx.reason.clone(),
            changes: tx.items.clone(),
            capacity: inventory.capacity,
            used: inventory.used,
        };
        let request = match typed_event(format!("player.{p}"), &event) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(player = p, error = %e.message(), "inventory event not built");
                return;
            }
        };
        let sent = self
            .events
            .publish(
                ctx.outgoing()
                    .idempotent(format!("payment-inventory:{p}:{}", tx.id))
                    .for_player(p),
                request,
            )
            .await;
        if let Err(e) = sent {
            tracing::warn!(player = p, transaction = %tx.id, error = %e.message(), "inventory event not published");
        }
    }
}
