//! The price catalog: what players can buy and at what price. It ships as data
//! (`handlers/data/payment/catalog.toml`), an operator may replace it with a file of their own,
//! and it is validated when loaded. A player names a sku and a quantity, never a price.
//!
//! Each item is either stackable (it fills one inventory slot per unit) or a capacity upgrade
//! (each unit adds `capacity` slots and fills none); `[inventory] base_capacity` is what every
//! player starts with.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};

/// Highest price of one unit, in minor units.
pub const MAX_PRICE: i64 = 1_000_000_000;
/// Most units in one purchase, for any item.
pub const MAX_QUANTITY: u32 = 1000;
/// Longest sku.
pub const MAX_SKU: usize = 64;
const MAX_NAME: usize = 80;
const MAX_DESCRIPTION: usize = 400;
/// Largest base capacity, and most slots one upgrade unit adds: with every upgrade bought the
/// capacity stays far below `u32::MAX`.
pub const MAX_CAPACITY: u32 = 100_000;

/// One item for sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its id: lowercase letters, digits and '_'.
    pub sku: String,
    /// What the shop shows.
    pub name: String,
    /// A sentence or two.
    pub description: String,
    /// Minor units per unit.
    pub price: i64,
    /// Most units in one purchase; for a capacity upgrade, the most a player can own.
    pub max_quantity: u32,
    /// Slots each unit adds to the inventory: 0 for a stackable item.
    pub capacity: u32,
    /// The canon item it is (`handlers/data/canon.toml`), or `None` for what is sold as a
    /// service (`catalog_only = true`) or not said.
    pub canon: Option<String>,
    /// Whether the file says it is a service, not a thing in the world.
    pub catalog_only: bool,
    line: usize,
}

impl Item {
    /// Whether it raises capacity rather than filling it.
    pub fn is_upgrade(&self) -> bool {
        self.capacity > 0
    }
}

/// Every item, by sku.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    items: BTreeMap<String, Item>,
    /// Slots every player's inventory has before upgrades.
    pub base_capacity: u32,
    /// Where it came from, for logs.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    inventory: Option<Spanned<RawInventory>>,
    #[serde(default)]
    item: Vec<Spanned<RawItem>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    base_capacity: Spanned<u32>,
}

/// What an item is: `kind` in the file.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Stackable,
    Capacity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    sku: Spanned<String>,
    name: Spanned<String>,
    description: Spanned<String>,
    price: Spanned<i64>,
    max_quantity: Spanned<u32>,
    kind: Spanned<Kind>,
    capacity: Option<Spanned<u32>>,
    canon: Option<Spanned<String>>,
    #[serde(default)]
    catalog_only: bool,
}

/// Whether `sku` has the form of a sku (checked before any lookup, so nothing odd is echoed).
pub fn valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= MAX_SKU
        && sku
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Text a player will see: printable (no control characters), 1 to `max` characters.
fn printable(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

impl Catalog {
    /// The item sold as `sku`.
    pub fn get(&self, sku: &str) -> Option<&Item> {
        self.items.get(sku)
    }

    /// Every item, by sku.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Checks that every item is a canon item (`is_item`) or says `catalog_only = true`. The
    /// error names the item's line.
    pub fn check_canon(&self, is_item: impl Fn(&str) -> bool) -> Result<(), DataError> {
        let mut items: Vec<&Item> = self.items.values().collect();
        items.sort_by_key(|i| i.line);
        for i in items {
            let message = match &i.canon {
                Some(c) if !is_item(c) => format!(
                    "{}: canon {c:?} is not an item of the canon (handlers/data/canon.toml)",
                    i.sku
                ),
                None if !i.catalog_only => format!(
                    "{}: say which canon item it is (canon = \"<id>\"), or catalog_only = true for a service",
                    i.sku
                ),
                _ => continue,
            };
            return Err(DataError {
                file: self.source.clone(),
                line: i.line,
                message,
            });
        }
        Ok(())
    }
}

impl Content for Catalog {
    const SHIPPED: Embedded = crate::embedded!("payment/catalog.toml");

    /// Parses and validates a catalog.
    fn parse(src: &Source) -> Result<Self, DataError> {
        let file: File = src.toml()?;
        let mut items = BTreeMap::new();
        for raw in file.item {
            let at = raw.span();
            let raw = raw.into_inner();
            let sku = raw.sku.get_ref();
            if !valid_sku(sku) {
                return Err(src.error(
                    Some(raw.sku.span()),
                    format!("sku {sku:?}: use 1 to {MAX_SKU} lowercase letters, digits or '_'"),
                ));
            }
            if !printable(raw.name.get_ref(), MAX_NAME) {
                return Err(src.error(
                    Some(raw.name.span()),
                    format!("{sku}: name must be 1 to {MAX_NAME} printable characters"),
                ));
            }
            if !printable(raw.description.get_ref(), MAX_DESCRIPTION) {
                return Err(src.error(
                    Some(raw.description.span()),
                    format!(
                        "{sku}: description must be 1 to {MAX_DESCRIPTION} printable characters"
                    ),
                ));
            }
            if !(1..=MAX_PRICE).contains(raw.price.get_ref()) {
                return Err(src.error(
                    Some(raw.price.span()),
                    format!("{sku}: price must be 1 to {MAX_PRICE} minor units"),
                ));
            }
            if !(1..=MAX_QUANTITY).contains(raw.max_quantity.get_ref()) {
                return Err(src.error(
                    Some(raw.max_quantity.span()),
                    format!("{sku}: max_quantity must be 1 to {MAX_QUANTITY}"),
                ));
            }
            let capacity = match (*raw.kind.get_ref(), &raw.capacity) {
                (Kind::Stackable, None) => 0,
                (Kind::Stackable, Some(c)) => {
                    return Err(src.error(
                        Some(c.span()),
                        format!("{sku}: capacity is only for kind = \"capacity\" items"),
                    ));
                }
                (Kind::Capacity, None) => {
                    return Err(src.error(
                        Some(raw.kind.span()),
                        format!("{sku}: a kind = \"capacity\" item needs capacity = <slots>"),
                    ));
                }
                (Kind::Capacity, Some(c)) => {
                    if !(1..=MAX_CAPACITY).contains(c.get_ref()) {
                        return Err(src.error(
                            Some(c.span()),
                            format!("{sku}: capacity must be 1 to {MAX_CAPACITY} slots"),
                        ));
                    }
                    *c.get_ref()
                }
            };
            if let (Some(c), true) = (&raw.canon, raw.catalog_only) {
                return Err(src.error(
                    Some(c.span()),
                    format!("{sku}: an item is either a canon item or catalog_only, not both"),
                ));
            }
            let item = Item {
                canon: raw.canon.as_ref().map(|c| c.get_ref().clone()),
                catalog_only: raw.catalog_only,
                line: src.error(Some(at.clone()), "").line,
                sku: sku.clone(),
                name: raw.name.into_inner(),
                description: raw.description.into_inner(),
                price: raw.price.into_inner(),
                max_quantity: raw.max_quantity.into_inner(),
                capacity,
            };
            if items.insert(item.sku.clone(), item).is_some() {
                return Err(src.error(Some(at), format!("sku {sku:?} is listed twice")));
            }
        }
        if items.is_empty() {
            return Err(src.error(None, "the catalog lists no [[item]]"));
        }
        let Some(inventory) = file.inventory else {
            return Err(src.error(
                None,
                "the catalog needs [inventory] base_capacity = <slots>",
            ));
        };
        let base = inventory.into_inner().base_capacity;
        if !(1..=MAX_CAPACITY).contains(base.get_ref()) {
            return Err(src.error(
                Some(base.span()),
                format!("base_capacity must be 1 to {MAX_CAPACITY} slots"),
            ));
        }
        Ok(Catalog {
            base_capacity: base.into_inner(),
            items,
            source: src.file.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_loads() {
        let c = Catalog::embedded().unwrap();
        assert!(c.items().count() >= 10);
        let sword = c.get("legendary_sword").unwrap();
        assert!(sword.price >= 100_000, "a legendary sword is not cheap");
        assert_eq!(sword.max_quantity, 1);
        assert!(!sword.is_upgrade());
        assert_eq!(c.get("stash_expansion").unwrap().capacity, 20);
        assert_eq!(c.get("pack_mule").unwrap().capacity, 40);
        assert!(c.base_capacity > 0);
    }

    #[test]
    fn errors_name_the_line() {
        // The [inventory] table last, so the items' lines are as written.
        let bad = |text: &str| {
            let text = format!("{text}\n[inventory]\nbase_capacity = 10\n");
            Catalog::parse(&Source::embedded("shop.toml", &text))
                .unwrap_err()
                .to_string()
        };
        let item = |sku: &str, price: i64| {
            format!(
                "[[item]]\nsku = \"{sku}\"\nname = \"A\"\ndescription = \"B\"\nprice = {price}\nmax_quantity = 1\nkind = \"stackable\"\n"
            )
        };
        assert!(
            bad(&item("ok", 0)).starts_with("shop.toml:5: ok: price"),
            "{}",
            bad(&item("ok", 0))
        );
        assert!(bad(&item("Bad Sku", 1)).starts_with("shop.toml:2: sku"));
        let twice = format!("{}{}", item("a", 1), item("a", 2));
        assert!(
            bad(&twice).starts_with("shop.toml:8: sku \"a\" is listed twice"),
            "{}",
            bad(&twice)
        );
        assert!(bad("").contains("no [[item]]"));
        assert!(bad("[[item]]\nsku = \"a\"\ncolour = 1\n").starts_with("shop.toml:"));
        let control = item("a", 1).replace("name = \"A\"", "name = \"A\\u0007\"");
        assert!(
            bad(&control).starts_with("shop.toml:3: a: name"),
            "{}",
            bad(&control)
        );
        // Every item says what it is; only a capacity upgrade carries capacity, and it must.
        let stackable = item("a", 1);
        let e = bad(&stackable.replace("kind = \"stackable\"\n", ""));
        assert!(e.starts_with("shop.toml:1:") && e.contains("kind"), "{e}");
        assert!(bad(&stackable.replace("stackable", "potion")).starts_with("shop.toml:7:"));
        let e = bad(&format!("{stackable}capacity = 5\n"));
        assert!(e.starts_with("shop.toml:8: a: capacity is only for"), "{e}");
        let e = bad(&stackable.replace("stackable", "capacity"));
        assert!(
            e.starts_with("shop.toml:7: a: a kind = \"capacity\" item needs"),
            "{e}"
        );
        let e = bad(&format!(
            "{}capacity = 0\n",
            stackable.replace("stackable", "capacity")
        ));
        assert!(e.starts_with("shop.toml:8: a: capacity must be"), "{e}");
        // The base capacity is required and bounded.
        let e = Catalog::parse(&Source::embedded("shop.toml", &stackable))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[inventory] base_capacity"), "{e}");
        let e = Catalog::parse(&Source::embedded(
            "shop.toml",
            &format!("[inventory]\nbase_capacity = 0\n{stackable}"),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("shop.toml:2: base_capacity must be"), "{e}");
    }

    #[test]
    fn skus_have_one_form() {
        assert!(valid_sku("legendary_sword"));
        for bad in [
            "",
            "Legendary",
            "a-b",
            "a b",
            "a\u{0}",
            &"a".repeat(MAX_SKU + 1),
        ] {
            assert!(!valid_sku(bad), "{bad:?}");
        }
    }
}
