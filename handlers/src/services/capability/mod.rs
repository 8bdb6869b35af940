//! `aicore.capability.v1.CapabilityService`: the registry of workers and what they serve.
//!
//! A registration is one record, `cap.w.<id>`, with a lease: `Register` (idempotent per worker
//! id) and `Heartbeat` extend it, `Deregister` removes it, and a registration whose lease lapsed
//! drops out of `List` (the janitor deletes it later). The store is shared by replicas on
//! JetStream, so every replica lists the same workers and the registry survives restarts.
//! `List` also shows, marked `discovered`, the NATS micro services the edge finds with
//! `$SRV.INFO` ([`Discovery`]): they need not register and leave when they stop answering.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proto::aicore::capability::v1::{
    CapabilityServiceHandler, DeregisterRequest, DeregisterResponse, HeartbeatRequest,
    HeartbeatResponse, ListRequest, ListResponse, RegisterRequest, RegisterResponse, Worker,
};
use serde::{Deserialize, Serialize};

use crate::kit::context::{Context, Principal};
use crate::kit::late_bound::LateBound;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Most registrations kept at once.
pub const MAX_WORKERS: usize = 1000;
/// Most metadata entries per worker.
const MAX_METADATA: usize = 16;
/// Compare-and-set attempts before reporting `aborted`.
const MAX_ATTEMPTS: usize = 16;
const PREFIX: &str = "cap.w.";

/// NATS micro services found by discovery, as workers with `source = "discovered"`.
pub trait Discovery: Send + Sync + 'static {
    /// What answered the last discovery round.
    fn discovered(&self) -> Vec<Worker>;
}

/// How long a registration lives without a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilitySettings {
    /// Heartbeat within this long or the registration lapses.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for CapabilitySettings {
    fn default() -> Self {
        CapabilitySettings {
            lease: Duration::from_secs(30),
        }
    }
}

impl CapabilitySettings {
    /// Checks the range.
    pub fn validate(&self) -> Result<(), String> {
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.lease) {
            return Err("capability.lease must be 1s to 1h".into());
        }
        Ok(())
    }
}

/// What the store keeps per worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    worker: Worker,
    /// The principal that registered it: only it may heartbeat or deregister it.
    owner: String,
}

impl Record {
    fn lapsed(&self, now: i64) -> bool {
        self.worker.lease_expires_at_ms <= now
    }
}

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn now_ms() -> i64 {
    i64::try_from(crate::kit::clock::now_ms()).unwrap_or(i64::MAX)
}

/// Worker ids: 1 to 64 of `[a-z0-9_-]` (a host name lowercased, a pod name, a uuid).
pub fn valid_worker_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn printable(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn check(worker: &Worker) -> Result<(), Status> {
    if !valid_worker_id(&worker.id) {
        return Err(Status::invalid_argument(
            "worker.id must be 1 to 64 lowercase letters, digits, '-' or '_'",
        ));
    }
    if worker.services.is_empty() || worker.services.len() > proto::SERVICES.len() {
        return Err(Status::invalid_argument(
            "worker.services must name 1 to 22 services",
        ));
    }
    if let Some(s) = worker
        .services
        .iter()
        .find(|s| proto::ServiceDesc::by_short(s).is_none())
    {
        return Err(Status::invalid_argument(format!(
            "there is no service {s:?}"
        )));
    }
    if !printable(&worker.version, 64) {
        return Err(Status::invalid_argument(
            "worker.version must be printable, at most 64 characters",
        ));
    }
    if worker.metadata.len() > MAX_METADATA
        || worker
            .metadata
            .iter()
            .any(|(k, v)| k.is_empty() || !printable(k, 64) || !printable(v, 256))
    {
        return Err(Status::invalid_argument(format!(
            "worker.metadata: at most {MAX_METADATA} entries, keys 1 to 64 and values up to 256 printable characters"
        )));
    }
    Ok(())
}

fn owner(ctx: &Context) -> Result<String, Status> {
    match &ctx.principal {
        Some(Principal::Service { name, .. }) => Ok(name.clone()),
        Some(Principal::Player { .. }) => Err(Status::permission_denied(
            "the worker registry is for services only",
        )),
        None => Err(Status::unauthenticated("authentication required")),
    }
}

/// The service.
#[derive(Clone)]
pub struct CapabilityService {
    store: Arc<dyn Store>,
    settings: CapabilitySettings,
    discovery: LateBound<dyn Discovery>,
}

impl std::fmt::Debug for CapabilityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapabilityService")
    }
}

impl CapabilityService {
    /// The registry over `store`; discovered services come from what the edge connects to
    /// `discovery`.
    pub fn new(
        store: Arc<dyn Store>,
        settings: CapabilitySettings,
        discovery: LateBound<dyn Discovery>,
    ) -> Self {
        CapabilityService {
            store,
            settings,
            discovery,
        }
    }

    fn lease_seconds(&self) -> u32 {
        u32::try_from(self.settings.lease.as_secs()).unwrap_or(u32::MAX)
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    async fn read(&self, id: &str) -> Result<Option<(Record, u64)>, Status> {
        match self.store.get(&key(id)).await? {
            Some(v) => {
                let record = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("worker record {id}: {e}")))?;
                Ok(Some((record, v.version)))
            }
            None => Ok(None),
        }
    }

    async fn write(&self, record: &Record, expected: Option<u64>) -> Result<bool, Status> {
        let bytes = serde_json::to_vec(record).map_err(Status::internal)?;
        match self
            .store
            .put(
                &key(&record.worker.id),
                Bytes::from(bytes),
                Some(expected.unwrap_or(0)),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Registrations, lapsed ones included, up to `limit`.
    async fn records(&self, limit: usize) -> Result<Vec<Record>, Status> {
        let page = self.store.list(PREFIX, None, limit).await?;
        page.entries
            .iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("worker record {k}: {e}")))
            })
            .collect()
    }
}

impl CapabilityServiceHandler for CapabilityService {
    type Context = Context;
    type Error = Status;

    async fn register(
        &self,
        ctx: Context,
        req: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        let owner = owner(&ctx)?;
        let mut worker = req
            .worker
            .ok_or_else(|| Status::invalid_argument("worker is required"))?;
        check(&worker)?;
        let services: BTreeSet<String> = worker.services.drain(..).collect();
        worker.services = services.into_iter().collect();
        worker.source = "registered".into();
        for _ in 0..MAX_ATTEMPTS {
            let now = now_ms();
            let existing = self.read(&worker.id).await?;
            let live = existing.as_ref().filter(|(r, _)| !r.lapsed(now));
            if let Some((r, _)) = live.filter(|(r, _)| r.owner != owner) {
                return Err(Status::permission_denied(format!(
                    "worker {} is registered by another principal",
                    r.worker.id
                )));
            }
            let alive = |r: &Record| !r.lapsed(now);
            if existing.is_none()
                && self
                    .records(MAX_WORKERS * 2)
                    .await?
                    .iter()
                    .filter(|r| alive(r))
                    .count()
                    >= MAX_WORKERS
            {
                return Err(Status::new(
                    crate::kit::status::Code::ResourceExhausted,
                    format!("the registry holds {MAX_WORKERS} workers; deregister some first"),
                ));
            }
            worker.registered_at_ms = live.map_or(now, |(r, _)| r.worker.registered_at_ms);
            worker.last_seen_ms = now;
            worker.lease_expires_at_ms = now.saturating_add(self.lease_ms());
            let record = Record {
                worker: worker.clone(),
                owner: owner.clone(),
            };
            if self.write(&record, existing.map(|(_, v)| v)).await? {
                return Ok(RegisterResponse {
                    lease_seconds: self.lease_seconds(),
                });
            }
        }
        Err(Status::aborted("the registration kept changing; retry"))
    }

    async fn heartbeat(
        &self,
        ctx: Context,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Status> {
        let owner = owner(&ctx)?;
        if !valid_worker_id(&req.worker_id) {
            return Err(Status::invalid_argument("workerId is not a worker id"));
        }
        for _ in 0..MAX_ATTEMPTS {
            let now = now_ms();
            let Some((mut record, version)) = self.read(&req.worker_id).await? else {
                return Err(Status::not_found(format!(
                    "worker {} is not registered; register it again",
                    req.worker_id
                )));
            };
            if record.lapsed(now) {
                return Err(Status::not_found(format!(
                    "the lease of worker {} lapsed; register it again",
                    req.worker_id
                )));
            }
            if record.owner != owner {
                return Err(Status::permission_denied(format!(
                    "worker {} is registered by another principal",
                    req.worker_id
                )));
            }
            record.worker.last_seen_ms = now;
            record.worker.lease_expires_at_ms = now.saturating_add(self.lease_ms());
            if self.write(&record, Some(version)).await? {
                return Ok(HeartbeatResponse {
                    lease_seconds: self.lease_seconds(),
                });
            }
        }
        Err(Status::aborted("the registration kept changing; retry"))
    }

    async fn list(&self, _: Context, req: ListRequest) -> Result<ListResponse, Status> {
        if !req.service.is_empty() && proto::ServiceDesc::by_short(&req.service).is_none() {
            return Err(Status::invalid_argument(format!(
                "there is no service {:?}",
                req.service
            )));
        }
        let now = now_ms();
        let serves = |w: &Worker| req.service.is_empty() || w.services.contains(&req.service);
        let mut workers: Vec<Worker> = self
            .records(MAX_WORKERS)
            .await?
            .into_iter()
            .filter(|r| !r.lapsed(now))
            .map(|r| r.worker)
            .filter(|w| serves(w))
            .collect();
        if let Some(discovery) = self.discovery.get() {
            workers.extend(discovery.discovered().into_iter().filter(|w| serves(w)));
        }
        Ok(ListResponse { workers })
    }

    async fn deregister(
        &self,
        ctx: Context,
        req: DeregisterRequest,
    ) -> Result<DeregisterResponse, Status> {
        let owner = owner(&ctx)?;
        if !valid_worker_id(&req.worker_id) {
            return Err(Status::invalid_argument("workerId is not a worker id"));
        }
        for _ in 0..MAX_ATTEMPTS {
            let Some((record, version)) = self.read(&req.worker_id).await? else {
                // Already gone: deregistering is idempotent.
                return Ok(DeregisterResponse {});
            };
            if record.owner != owner && !record.lapsed(now_ms()) {
                return Err(Status::permission_denied(format!(
                    "worker {} is registered by another principal",
                    req.worker_id
                )));
            }
            match self.store.delete(&key(&req.worker_id), Some(version)).await {
                Ok(_) => return Ok(DeregisterResponse {}),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the registration kept changing; retry"))
    }
}

/// Deletes registrations that lapsed over an hour ago (the janitor's pass).
pub async fn prune_lapsed(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    let cutoff = now_ms().saturating_sub(3_600_000);
    crate::kit::store::prune_prefix(
        store,
        PREFIX,
        move |v| {
            serde_json::from_slice::<Record>(v).is_ok_and(|r| r.worker.lease_expires_at_ms < cutoff)
        },
        stop,
    )
    .await
}

#[cfg(test)]
mod tests;
