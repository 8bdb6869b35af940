//! Daily spend caps, shared by every replica and worker through the store: what model calls cost,
//! in the catalog's cost units (micro-units of currency, from each model's `input_cost_per_1k`
//! and `output_cost_per_1k`), per payer per UTC day and for everyone per UTC day.
//!
//! The token bucket on the call path bounds how fast one payer spends on one replica; these caps
//! bound how much, whatever the number of replicas. A call reserves its worst case (its prompt and
//! its whole `maxTokens`) before a provider is asked, and gives back what it did not use when it
//! ends; a call the caps cannot cover is refused at once (`resource_exhausted`, retry after the
//! UTC midnight). Models that cost nothing (the built-in grammar) never touch the store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::kit::clock::now_ms;
use crate::kit::context::Principal;
use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

/// Where the running totals live: one record per payer and one for everyone, each for its day.
const PREFIX: &str = "llm.spend.";
const TOTAL: &str = "llm.spend.total";
/// Compare-and-set rounds before a busy counter is reported as unavailable.
const MAX_ATTEMPTS: usize = 32;
const DAY_MS: u64 = 86_400_000;

/// The caps, in cost units per UTC day. `0` means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendCaps {
    /// What one payer (a player, or a service key for calls it makes for no player) may spend.
    pub per_payer_daily: u64,
    /// What everyone together may spend: the studio's bill's ceiling.
    pub total_daily: u64,
}

impl Default for SpendCaps {
    fn default() -> Self {
        // 0.05 a player a day, 500 a day in all (in micro-units of the catalog's currency).
        SpendCaps {
            per_payer_daily: 50_000,
            total_daily: 500_000_000,
        }
    }
}

/// A running total: the day it counts and what was spent in it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Total {
    day: u64,
    spent: u64,
}

/// What a call's tokens cost on a model, rounded up.
pub fn cost(input_per_1k: u64, output_per_1k: u64, prompt: u32, completion: u32) -> u64 {
    let units = u128::from(input_per_1k) * u128::from(prompt)
        + u128::from(output_per_1k) * u128::from(completion);
    u64::try_from(units.div_ceil(1000)).unwrap_or(u64::MAX)
}

/// The spend counters.
#[derive(Clone)]
pub struct Spend {
    store: Arc<dyn Store>,
    caps: SpendCaps,
}

impl std::fmt::Debug for Spend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spend").field("caps", &self.caps).finish()
    }
}

/// Spent, and to be settled when the call ends.
#[derive(Debug, Clone)]
pub struct Reservation {
    key: Option<String>,
    day: u64,
    amount: u64,
}

impl Spend {
    /// Counters in `store`, capped by `caps`.
    pub fn new(store: Arc<dyn Store>, caps: SpendCaps) -> Self {
        Spend { store, caps }
    }

    /// Takes `amount` from today's budget of `payer` and of everyone, or refuses the call.
    pub async fn reserve(
        &self,
        payer: Option<&Principal>,
        amount: u64,
    ) -> Result<Reservation, Status> {
        let day = now_ms() / DAY_MS;
        let key = payer_key(payer);
        if amount == 0 {
            return Ok(Reservation {
                key: None,
                day,
                amount,
            });
        }
        if let Some(k) = &key {
            self.add(k, day, amount, self.caps.per_payer_daily, "your")
                .await?;
        }
        if let Err(e) = self
            .add(TOTAL, day, amount, self.caps.total_daily, "the game's")
            .await
        {
            if let Some(k) = &key {
                self.give_back(k, day, amount).await;
            }
            return Err(e);
        }
        Ok(Reservation { key, day, amount })
    }

    /// Ends a reservation that cost `used` (at most what was reserved): the rest goes back.
    pub async fn settle(&self, r: Reservation, used: u64) {
        let unused = r.amount.saturating_sub(used);
        if unused == 0 {
            return;
        }
        if let Some(k) = &r.key {
            self.give_back(k, r.day, unused).await;
        }
        self.give_back(TOTAL, r.day, unused).await;
    }

    async fn add(
        &self,
        key: &str,
        day: u64,
        amount: u64,
        cap: u64,
        whose: &str,
    ) -> Result<(), Status> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.store.get(key).await?;
            let (mut total, version) = match &current {
                Some(v) => (
                    serde_json::from_slice::<Total>(&v.value).unwrap_or_default(),
                    v.version,
                ),
                None => (Total::default(), 0),
            };
            if total.day != day {
                total = Total { day, spent: 0 };
            }
            let spent = total.spent.saturating_add(amount);
            if cap > 0 && spent > cap {
                let until_midnight = (day + 1) * DAY_MS - now_ms().min((day + 1) * DAY_MS);
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "{whose} daily LLM spend cap is reached ({} of {cap} units spent; this call needs up to {amount}); it resets at 00:00 UTC",
                        total.spent
                    ),
                )
                .with_retry_after(Duration::from_millis(until_midnight.max(1))));
            }
            total.spent = spent;
            match self.store.put(key, encode(&total)?, Some(version)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::unavailable(
            "the LLM spend counters are busy; retry shortly",
            Duration::from_millis(200),
        ))
    }

    /// Gives `amount` back to `key`'s total of `day` (nothing if the day has turned). Best effort:
    /// a failure leaves the payer charged for tokens it did not use, never the reverse.
    async fn give_back(&self, key: &str, day: u64, amount: u64) {
        for _ in 0..MAX_ATTEMPTS {
            let Ok(Some(current)) = self.store.get(key).await else {
                return;
            };
            let Ok(mut total) = serde_json::from_slice::<Total>(&current.value) else {
                return;
            };
            if total.day != day {
                return;
            }
            total.spent = total.spent.saturating_sub(amount);
            let Ok(bytes) = encode(&total) else { return };
            match self.store.put(key, bytes, Some(current.version)).await {
                Err(StoreError::Conflict { .. }) => {}
                Ok(_) | Err(_) => return,
            }
        }
    }
}

/// Prunes payers' totals of days before yesterday (the janitor's job).
pub async fn prune_spend(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    let today = now_ms() / DAY_MS;
    crate::kit::store::prune_prefix(
        store,
        PREFIX,
        |raw| serde_json::from_slice::<Total>(raw).is_ok_and(|t| t.day + 1 < today),
        stop,
    )
    .await
}

fn encode(total: &Total) -> Result<Bytes, Status> {
    serde_json::to_vec(total)
        .map(Bytes::from)
        .map_err(|e| Status::internal(format!("encoding a spend total: {e}")))
}

/// The store key of a payer's total: players by id; service keys by name (names are store-safe
/// slugs); nobody (no principal) pays only into the total.
fn payer_key(payer: Option<&Principal>) -> Option<String> {
    match payer? {
        Principal::Player { player_id } => Some(format!("{PREFIX}player.{player_id}")),
        Principal::Service { name, .. } => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            Some(format!("{PREFIX}service.{safe}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::temp_store;

    fn player(id: &str) -> Principal {
        Principal::Player {
            player_id: id.into(),
        }
    }

    #[test]
    fn cost_rounds_up_per_thousand_tokens() {
        assert_eq!(cost(0, 0, 1000, 1000), 0);
        assert_eq!(cost(1000, 2000, 1, 1), 3);
        assert_eq!(cost(10, 20, 100, 50), 2, "1 + 1, rounded up");
        assert_eq!(cost(u64::MAX, u64::MAX, u32::MAX, u32::MAX), u64::MAX);
    }

    #[tokio::test]
    async fn a_payer_and_everyone_are_capped_and_unused_spend_goes_back() {
        let (_dir, store) = temp_store();
        let spend = Spend::new(
            Arc::clone(&store),
            SpendCaps {
                per_payer_daily: 100,
                total_daily: 150,
            },
        );
        let (a, b) = (player("a"), player("b"));
        let r = spend.reserve(Some(&a), 80).await.unwrap();
        let e = spend.reserve(Some(&a), 30).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert!(
            e.message().contains("your daily LLM spend cap"),
            "{}",
            e.message()
        );
        assert!(e.retry_after().is_some());
        // The call used 50 of its 80: 30 come back, so 30 more fit.
        spend.settle(r, 50).await;
        spend.reserve(Some(&a), 50).await.unwrap();
        // Everyone: a has 100, b may take 50 of the total's 150, not 60.
        let e = spend.reserve(Some(&b), 60).await.unwrap_err();
        assert!(e.message().contains("the game's"), "{}", e.message());
        spend.reserve(Some(&b), 50).await.unwrap();
        // A refused total gives the payer's share back: b was not charged the 60.
        let total: Total = serde_json::from_slice(
            &store
                .get("llm.spend.player.b")
                .await
                .unwrap()
                .unwrap()
                .value,
        )
        .unwrap();
        assert_eq!(total.spent, 50);
        // Free calls pass without a store write.
        spend.reserve(Some(&a), 0).await.unwrap();
    }

    #[tokio::test]
    async fn totals_of_another_day_start_again() {
        let (_dir, store) = temp_store();
        let spend = Spend::new(Arc::clone(&store), SpendCaps::default());
        let old = Total {
            day: now_ms() / DAY_MS - 3,
            spent: u64::MAX,
        };
        store
            .put("llm.spend.player.a", encode(&old).unwrap(), None)
            .await
            .unwrap();
        spend.reserve(Some(&player("a")), 10).await.unwrap();
        let pruned = prune_spend(store.as_ref(), || false).await.unwrap();
        assert_eq!(pruned, 0, "today's total stays");
    }
}
