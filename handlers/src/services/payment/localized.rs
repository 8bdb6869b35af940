//! Item text in the player's language (`crate::kit::l10n`): an item's name and description,
//! keyed `item-<sku>-name` and `item-<sku>-description`. Skus, prices and counts are the same in
//! every language; the ledger keeps what was said when it was written.

use std::sync::Arc;

use proto::aicore::payment::v1::{CatalogItem, Inventory};

use super::PaymentService;
use crate::kit::context::Context;
use crate::kit::l10n::{Reader, Texts};

impl PaymentService {
    /// Serving item text in each player's language, from `texts`.
    #[must_use]
    pub fn with_texts(mut self, texts: Arc<Texts>) -> Self {
        self.texts = texts;
        self
    }

    /// The reader of `player`'s item text (the calling player's when `None`).
    pub(super) async fn reader(&self, ctx: &Context, player: Option<&str>) -> Reader<'_> {
        self.texts.reader_for(ctx, &self.settings, player).await
    }
}

/// `item` as `reader` reads it.
pub(super) fn catalog_item(mut item: CatalogItem, reader: &Reader<'_>) -> CatalogItem {
    reader.put(&format!("item-{}-name", item.sku), &mut item.name);
    reader.put(
        &format!("item-{}-description", item.sku),
        &mut item.description,
    );
    item
}

/// `inventory`'s item text as `reader` reads it.
pub(super) fn inventory(mut inventory: Inventory, reader: &Reader<'_>) -> Inventory {
    for i in inventory
        .items
        .iter_mut()
        .chain(inventory.upgrades.iter_mut())
    {
        reader.put(&format!("item-{}-name", i.sku), &mut i.name);
        reader.put(&format!("item-{}-description", i.sku), &mut i.description);
    }
    inventory
}
