//! The ledger: accounts, transactions and idempotency records in the store, and the moves of money
//! and items that keep the balance equal to the sum of the ledger, each applied exactly once.
//! Every transaction records what it did to the inventory (`items`), so a refund or reversal
//! undoes exactly that, whatever the catalog says today.

use super::*;

/// Largest amount of one transaction, in minor units.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Longest `reason`.
pub(super) const MAX_TEXT: usize = 200;
/// Compare-and-set attempts before telling the client to retry.
pub(super) const MAX_ATTEMPTS: usize = 64;

/// The payment service.
#[derive(Clone)]
pub struct PaymentService {
    pub(super) store: Arc<dyn Store>,
    pub(super) catalog: Arc<Catalog>,
    /// Where inventory changes are announced.
    pub(super) events: EventBusServiceClient<Caller>,
    /// Reads the player's language for item text (`localized.rs`).
    pub(super) settings: proto::aicore::settings::v1::SettingsServiceClient<Caller>,
    /// Item text in other languages.
    pub(super) texts: Arc<crate::kit::l10n::Texts>,
}

impl std::fmt::Debug for PaymentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentService")
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Account {
    pub(super) balance: i64,
    pub(super) seq: u64,
    #[serde(default)]
    pub(super) last: Option<Applied>,
    /// The last key barred by a `Reverse` that found nothing to undo.
    #[serde(default)]
    pub(super) bar: Option<Bar>,
    /// The inventory: here, in the commit point, so money and items move in one write.
    #[serde(default)]
    pub(super) stock: Stock,
}

/// A committed bar: `target` (a key hash) applied nothing and never will; `key` (the Reverse's
/// own key hash) answers "nothing reversed" on a retry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Bar {
    pub(super) target: String,
    pub(super) key: String,
    pub(super) fingerprint: String,
}

/// The fingerprint of a barred key's record.
pub(super) const BARRED: &str = "barred";

/// A committed transaction and what settling it writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Applied {
    pub(super) tx: Transaction,
    pub(super) key: String,
    pub(super) fingerprint: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct KeyRecord {
    pub(super) seq: u64,
    pub(super) fingerprint: String,
}

/// A requested mutation.
#[derive(Debug)]
pub(super) enum Op {
    Credit {
        amount: i64,
        reason: String,
    },
    /// `amount` is the catalog's price times `quantity`, fixed when the call came in.
    Purchase {
        sku: String,
        quantity: u32,
        amount: i64,
    },
    Refund {
        target: u64,
    },
    /// Undo what the key with this hash applied.
    Reverse {
        target: String,
        reason: String,
    },
    /// Currency and catalog items (sku, units), checked against the catalog already.
    Grant {
        currency: i64,
        items: Vec<(String, u32)>,
        reason: String,
    },
    Consume {
        sku: String,
        quantity: u32,
        reason: String,
    },
}

/// What a mutation did: a transaction, or (a Reverse with nothing to undo) nothing; with the
/// inventory as it stands after it.
pub(super) enum Outcome {
    Applied(Transaction, i64, Stock),
    Barred(i64, Stock),
}

impl Outcome {
    pub(super) fn transaction(self) -> Result<(Transaction, i64, Stock), Status> {
        match self {
            Outcome::Applied(tx, balance, stock) => Ok((tx, balance, stock)),
            Outcome::Barred(..) => Err(Status::internal("a payment applied no transaction")),
        }
    }
}

impl Op {
    /// What must match when a key is used again.
    pub(super) fn fingerprint(&self) -> String {
        let text = match self {
            Op::Credit { amount, reason } => format!("credit\n{amount}\n{reason}"),
            // What the caller asked for; a price change does not make a retry a new request.
            Op::Purchase { sku, quantity, .. } => format!("purchase\n{quantity}\n{sku}"),
            Op::Refund { target } => format!("refund\n{target}"),
            Op::Reverse { target, reason } => format!("reverse\n{target}\n{reason}"),
            Op::Grant {
                currency,
                items,
                reason,
            } => {
                let items: Vec<String> = items.iter().map(|(s, q)| format!("{s}:{q}")).collect();
                format!("grant\n{currency}\n{}\n{reason}", items.join(","))
            }
            Op::Consume {
                sku,
                quantity,
                reason,
            } => format!("consume\n{sku}\n{quantity}\n{reason}"),
        };
        format!("{:x}", Sha256::digest(text.as_bytes()))
    }
}

/// An Idempotency-Key as the ledger keeps it: hashed with who sent it, so one caller's key never
/// matches (or lets it reverse or bar) another caller's payment.
pub(super) fn key_hash(ctx: &Context, key: &str) -> String {
    let who = ctx
        .principal
        .as_ref()
        .map(Principal::describe)
        .unwrap_or_default();
    format!("{:x}", Sha256::digest(format!("{who}\n{key}").as_bytes()))
}

pub(super) fn account_key(p: &str) -> String {
    format!("payment.{p}.account")
}
pub(super) fn tx_key(p: &str, seq: u64) -> String {
    format!("payment.{p}.tx.{seq:020}")
}
pub(super) fn key_key(p: &str, hash: &str) -> String {
    format!("payment.{p}.key.{hash}")
}
pub(super) fn refunded_key(p: &str, seq: u64) -> String {
    format!("payment.{p}.refunded.{seq:020}")
}

/// Transaction ids are `tx-<seq>`, unique per player.
pub(super) fn tx_id(seq: u64) -> String {
    format!("tx-{seq}")
}
/// Only the canonical form: `tx-` and digits without sign or leading zero (`tx-+2`, `tx-02` are
/// not ids, so one transaction has one id).
pub(super) fn parse_tx_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("tx-")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|&n: &u64| n > 0 && tx_id(n) == id)
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<Bytes, Status> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(Status::internal)
}

impl PaymentService {
    /// A payment service over `store` whose announcements go nowhere (they fail, and are logged)
    /// until [`PaymentService::with_calls`] connects it.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>) -> Self {
        let caller =
            crate::kit::calls::Calls::new().from(proto::aicore::payment::v1::PAYMENT_SERVICE);
        PaymentService {
            store,
            catalog,
            events: EventBusServiceClient(caller.clone()),
            settings: proto::aicore::settings::v1::SettingsServiceClient(caller),
            texts: Arc::default(),
        }
    }

    /// The service calling events and settings through `caller` (the payment service's).
    pub fn with_calls(self, caller: Caller) -> Self {
        PaymentService {
            events: EventBusServiceClient(caller.clone()),
            settings: proto::aicore::settings::v1::SettingsServiceClient(caller),
            ..self
        }
    }

    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, u64)>, Status> {
        match self.store.get(key).await? {
            Some(v) => {
                let value = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("corrupt record {key}: {e}")))?;
                Ok(Some((value, v.version)))
            }
            None => Ok(None),
        }
    }

    /// The account and its version (0: none yet).
    pub(super) async fn account(&self, p: &str) -> Result<(Account, u64), Status> {
        Ok(self
            .get_json::<Account>(&account_key(p))
            .await?
            .unwrap_or_default())
    }

    pub(super) async fn transaction(
        &self,
        p: &str,
        seq: u64,
    ) -> Result<Option<Transaction>, Status> {
        Ok(self
            .get_json::<Transaction>(&tx_key(p, seq))
            .await?
            .map(|(tx, _)| tx))
    }

    /// Writes what the commit of `applied` implies, if it is not written yet. Idempotent.
    pub(super) async fn settle(&self, p: &str, applied: &Applied) -> Result<(), Status> {
        let seq = parse_tx_id(&applied.tx.id)
            .ok_or_else(|| Status::internal(format!("corrupt transaction id {}", applied.tx.id)))?;
        let key = key_key(p, &applied.key);
        if self.store.get(&key).await?.is_some() {
            // The key record is written last: if it is there, so is the rest.
            return Ok(());
        }
        self.store
            .put(&tx_key(p, seq), to_json(&applied.tx)?, None)
            .await?;
        if let Some(target) = parse_tx_id(&applied.tx.refunds_transaction_id) {
            let marker = to_json(&KeyRecord {
                seq,
                fingerprint: String::new(),
            })?;
            self.store
                .put(&refunded_key(p, target), marker, None)
                .await?;
        }
        let record = to_json(&KeyRecord {
            seq,
            fingerprint: applied.fingerprint.clone(),
        })?;
        self.store.put(&key, record, None).await?;
        Ok(())
    }

    /// Writes the key records a committed bar implies, if they are not written yet. Idempotent.
    pub(super) async fn settle_bar(&self, p: &str, bar: &Bar) -> Result<(), Status> {
        let own = key_key(p, &bar.key);
        if self.store.get(&own).await?.is_some() {
            return Ok(());
        }
        let barred = to_json(&KeyRecord {
            seq: 0,
            fingerprint: BARRED.to_owned(),
        })?;
        self.store
            .put(&key_key(p, &bar.target), barred, None)
            .await?;
        let record = to_json(&KeyRecord {
            seq: 0,
            fingerprint: bar.fingerprint.clone(),
        })?;
        self.store.put(&own, record, None).await?;
        Ok(())
    }

    /// The reversal of what key hash `target` applied, or `None` (a bar) if it applied nothing.
    pub(super) async fn plan_reverse(
        &self,
        p: &str,
        target: &str,
        reason: &str,
        mut tx: Transaction,
    ) -> Result<Option<Transaction>, Status> {
        let Some((record, _)) = self.get_json::<KeyRecord>(&key_key(p, target)).await? else {
            return Ok(None);
        };
        if record.seq == 0 {
            // Barred already (by another Reverse): still nothing to undo.
            return Ok(None);
        }
        let original = self
            .transaction(p, record.seq)
            .await?
            .ok_or_else(|| Status::internal(format!("ledger entry {} missing", record.seq)))?;
        if !matches!(
            original.kind(),
            TransactionKind::Credit | TransactionKind::Purchase | TransactionKind::Grant
        ) {
            return Err(Status::failed_precondition(format!(
                "{} is not a credit, purchase or grant; only those can be reversed",
                original.id
            )));
        }
        if let Some((by, _)) = self
            .get_json::<KeyRecord>(&refunded_key(p, record.seq))
            .await?
        {
            return Err(Status::failed_precondition(format!(
                "{} was already undone by {}",
                original.id,
                tx_id(by.seq)
            )));
        }
        tx.kind = TransactionKind::Reversal.into();
        tx.amount = -original.amount;
        tx.sku = original.sku;
        tx.quantity = original.quantity;
        tx.items = inventory::negated(&original.items);
        tx.reason = reason.to_owned();
        tx.refunds_transaction_id = original.id;
        Ok(Some(tx))
    }

    /// The new transaction `op` makes on `account` and the inventory it leaves, or why it cannot;
    /// `None` for a reversal that finds nothing to undo (its target is barred instead).
    pub(super) async fn plan(
        &self,
        p: &str,
        op: &Op,
        account: &Account,
    ) -> Result<Option<(Transaction, Stock)>, Status> {
        let seq = account.seq + 1;
        let mut tx = Transaction {
            id: tx_id(seq),
            created_at_ms: i64::try_from(crate::kit::clock::now_ms()).unwrap_or(i64::MAX),
            ..Transaction::default()
        };
        match op {
            Op::Credit { amount, reason } => {
                tx.kind = TransactionKind::Credit.into();
                tx.amount = *amount;
                tx.reason.clone_from(reason);
            }
            Op::Purchase {
                sku,
                quantity,
                amount,
            } => {
                tx.kind = TransactionKind::Purchase.into();
                tx.amount = -amount;
                tx.sku.clone_from(sku);
                tx.quantity = *quantity;
                tx.items = vec![self.change(sku, *quantity)?];
            }
            Op::Grant {
                currency,
                items,
                reason,
            } => {
                tx.kind = TransactionKind::Grant.into();
                tx.amount = *currency;
                tx.reason.clone_from(reason);
                tx.items = items
                    .iter()
                    .map(|(sku, q)| self.change(sku, *q))
                    .collect::<Result<_, _>>()?;
            }
            Op::Consume {
                sku,
                quantity,
                reason,
            } => {
                let have = account.stock.held(sku);
                if have < *quantity {
                    return Err(Status::failed_precondition(format!(
                        "the player holds {have} {}, {quantity} needed",
                        self.name(sku)
                    )));
                }
                tx.kind = TransactionKind::Consume.into();
                tx.sku.clone_from(sku);
                tx.quantity = *quantity;
                tx.reason.clone_from(reason);
                tx.items = vec![ItemChange {
                    sku: sku.clone(),
                    quantity: -i32::try_from(*quantity).map_err(Status::internal)?,
                    capacity: 0,
                }];
            }
            Op::Refund { target } => {
                let original = self.transaction(p, *target).await?.ok_or_else(|| {
                    Status::not_found(format!("no transaction {}", tx_id(*target)))
                })?;
                if original.kind() != TransactionKind::Purchase {
                    return Err(Status::failed_precondition(format!(
                        "{} is not a purchase; only purchases can be refunded",
                        original.id
                    )));
                }
                if let Some((by, _)) = self
                    .get_json::<KeyRecord>(&refunded_key(p, *target))
                    .await?
                {
                    return Err(Status::failed_precondition(format!(
                        "{} was already refunded by {}",
                        original.id,
                        tx_id(by.seq)
                    )));
                }
                tx.kind = TransactionKind::Refund.into();
                tx.amount = -original.amount;
                tx.sku = original.sku;
                tx.quantity = original.quantity;
                tx.items = inventory::negated(&original.items);
                tx.refunds_transaction_id = original.id;
            }
            Op::Reverse { target, reason } => {
                match self.plan_reverse(p, target, reason, tx).await? {
                    Some(reversal) => tx = reversal,
                    None => return Ok(None),
                }
            }
        }
        // Items first: a purchase the inventory cannot hold is refused whatever the balance.
        let stock = self.restock(&account.stock, &tx.items)?;
        let balance = account.balance.checked_add(tx.amount).ok_or_else(|| {
            Status::new(
                crate::kit::status::Code::OutOfRange,
                "the balance would overflow",
            )
        })?;
        if balance < 0 {
            return Err(Status::failed_precondition(format!(
                "insufficient balance: {} available, {} needed",
                account.balance, -tx.amount
            )));
        }
        tx.balance_after = balance;
        Ok(Some((tx, stock)))
    }

    /// Applies `op` for player `p` exactly once per Idempotency-Key: the balance and the inventory
    /// change in the one compare-and-set on the account, so neither moves without the other.
    pub(super) async fn apply(&self, ctx: &Context, p: &str, op: Op) -> Result<Outcome, Status> {
        let key = ctx.idempotency_key.as_deref().ok_or_else(|| {
            Status::invalid_argument("payment mutations need an Idempotency-Key header")
        })?;
        let key = key_hash(ctx, key);
        let fingerprint = op.fingerprint();
        for _ in 0..MAX_ATTEMPTS {
            let (account, version) = self.account(p).await?;
            if let Some(last) = &account.last {
                self.settle(p, last).await?;
            }
            if let Some(bar) = &account.bar {
                self.settle_bar(p, bar).await?;
            }
            if let Some((record, _)) = self.get_json::<KeyRecord>(&key_key(p, &key)).await? {
                if record.seq == 0 && record.fingerprint == BARRED {
                    return Err(Status::failed_precondition(
                        "this Idempotency-Key was reversed before it applied; it applies nothing now",
                    ));
                }
                if record.fingerprint != fingerprint {
                    return Err(Status::unprocessable(
                        "this Idempotency-Key was already used for a different payment request",
                    ));
                }
                if record.seq == 0 {
                    return Ok(Outcome::Barred(account.balance, account.stock));
                }
                let tx = self.transaction(p, record.seq).await?.ok_or_else(|| {
                    Status::internal(format!("ledger entry {} missing", record.seq))
                })?;
                // A retry announces again under the same event key: if the first announcement
                // was lost, this one goes out; if not, the bus answers with the first.
                self.announce(ctx, p, &tx, &account.stock).await;
                let balance = tx.balance_after;
                return Ok(Outcome::Applied(tx, balance, account.stock));
            }
            let (tx, stock) = match self.plan(p, &op, &account).await? {
                Some(planned) => planned,
                None => {
                    let bar = Bar {
                        target: match &op {
                            Op::Reverse { target, .. } => target.clone(),
                            _ => return Err(Status::internal("only a reversal bars a key")),
                        },
                        key: key.clone(),
                        fingerprint: fingerprint.clone(),
                    };
                    let next = Account {
                        bar: Some(bar.clone()),
                        ..account
                    };
                    match self
                        .store
                        .put(&account_key(p), to_json(&next)?, Some(version))
                        .await
                    {
                        Ok(_) => {
                            if let Err(e) = self.settle_bar(p, &bar).await {
                                tracing::warn!(player = p, error = %e.message(), "payment settle deferred");
                            }
                            return Ok(Outcome::Barred(next.balance, next.stock));
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let applied = Applied {
                tx,
                key: key.clone(),
                fingerprint: fingerprint.clone(),
            };
            let next = Account {
                balance: applied.tx.balance_after,
                seq: account.seq + 1,
                last: Some(applied.clone()),
                bar: account.bar.clone(),
                stock,
            };
            match self
                .store
                .put(&account_key(p), to_json(&next)?, Some(version))
                .await
            {
                Ok(_) => {
                    // Committed. If settling fails now, the next call for this player finishes it.
                    if let Err(e) = self.settle(p, &applied).await {
                        tracing::warn!(player = p, error = %e.message(), "payment settle deferred");
                    }
                    self.announce(ctx, p, &applied.tx, &next.stock).await;
                    return Ok(Outcome::Applied(applied.tx, next.balance, next.stock));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(
            Status::aborted("too many concurrent payments for this player; retry")
                .with_retry_after(std::time::Duration::from_millis(100)),
        )
    }
}
