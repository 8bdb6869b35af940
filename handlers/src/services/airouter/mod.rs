//! `aicore.airouter.v1.AiRouterService`: picks a model from the catalog for a request (task,
//! latency budget, cost ceiling, context length) and a fallback chain for when it fails before its
//! first token. The capability asked for (chat, translate) is the one hard rule: a model that
//! lacks it is never chosen, not even as the last resort. Pure ranking over the shared catalog; nothing is cached, so a Register or Retire is
//! seen by the next call on every replica.
//!
//! May import: `proto`, `crate::kit`, and types of the `models` service (see `crate::services`).

use proto::aicore::airouter::v1::{AiRouterServiceHandler, RouteRequest, RouteResponse};
use proto::aicore::models::v1::{Capability, Model, ModelStatus};

use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::services::models::{Catalog, can, capability_word};

/// At most this many fallbacks follow the chosen model.
const MAX_FALLBACKS: usize = 3;

/// Whether `m` meets every hard constraint of `req`.
fn fits(m: &Model, req: &RouteRequest) -> bool {
    m.status == ModelStatus::Active as i32
        && (req.latency_budget_ms == 0 || m.typical_latency_ms <= req.latency_budget_ms)
        && (req.cost_ceiling_per_1k == 0 || m.output_cost_per_1k <= req.cost_ceiling_per_1k)
        && (req.min_context_length == 0 || m.context_length >= req.min_context_length)
}

/// Orders the catalog for `req`: models that fit before those that do not, then those made for
/// the task, then the default, then the cheapest, then the fastest, then by name (stable).
pub fn rank(models: &[Model], req: &RouteRequest) -> RouteResponse {
    let capability = req.capability();
    let mut candidates: Vec<&Model> = models
        .iter()
        .filter(|m| m.status == ModelStatus::Active as i32 && can(m, capability))
        .collect();
    let for_task = |m: &Model| !req.task.is_empty() && m.tasks.contains(&req.task);
    candidates.sort_by(|a, b| {
        fits(b, req)
            .cmp(&fits(a, req))
            .then(for_task(b).cmp(&for_task(a)))
            .then(b.is_default.cmp(&a.is_default))
            .then(a.output_cost_per_1k.cmp(&b.output_cost_per_1k))
            .then(a.typical_latency_ms.cmp(&b.typical_latency_ms))
            .then(a.name.cmp(&b.name))
    });
    let Some(first) = candidates.first() else {
        return RouteResponse::default();
    };
    let reason = if !fits(first, req) {
        "no model meets every constraint; chose the closest".to_owned()
    } else if for_task(first) {
        format!("made for task {:?} and within the constraints", req.task)
    } else if first.is_default {
        "the default model, within the constraints".to_owned()
    } else {
        "the cheapest model within the constraints".to_owned()
    };
    let mut fallbacks: Vec<String> = candidates[1..]
        .iter()
        .filter(|m| fits(m, req))
        .take(MAX_FALLBACKS)
        .map(|m| m.name.clone())
        .collect();
    // The default is always the last resort, constraints or not: an answer beats none.
    if let Some(default) = candidates.iter().find(|m| m.is_default)
        && default.name != first.name
        && !fallbacks.contains(&default.name)
    {
        fallbacks.push(default.name.clone());
    }
    RouteResponse {
        model: first.name.clone(),
        fallbacks,
        reason,
    }
}

/// Why no model was chosen, naming the setting that registers one. `failed_precondition`: the
/// catalog must change before a retry can succeed.
pub fn none_can(c: Capability) -> Status {
    if matches!(c, Capability::Unspecified | Capability::Chat) {
        return Status::failed_precondition(
            "the model catalog has no active model; register one ([[llm.models]] in the config \
             file, or models.Register)",
        );
    }
    let word = capability_word(c);
    Status::failed_precondition(format!(
        "no active model can {word}: register one that declares it, in the config file \
         ([[llm.models]] with capabilities = [\"chat\", \"{word}\"]) or with models.Register \
         (capabilities: [\"{}\"]); the built-in grammar model cannot",
        c.as_str_name()
    ))
}

/// The AI router service.
#[derive(Debug, Clone)]
pub struct AiRouterService {
    catalog: Catalog,
}

impl AiRouterService {
    /// The service over `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        AiRouterService { catalog }
    }

    /// Routes `req` against the current catalog.
    pub async fn route(&self, req: &RouteRequest) -> Result<RouteResponse, Status> {
        let models = self.catalog.list(false).await?;
        let resp = rank(&models, req);
        if resp.model.is_empty() {
            return Err(none_can(req.capability()));
        }
        Ok(resp)
    }
}

impl AiRouterServiceHandler for AiRouterService {
    type Context = Context;
    type Error = Status;

    async fn route(&self, _: Context, req: RouteRequest) -> Result<RouteResponse, Status> {
        if req.task.len() > 64 {
            return Err(Status::invalid_argument("task is at most 64 characters"));
        }
        if Capability::try_from(req.capability).is_err() {
            return Err(Status::invalid_argument(format!(
                "capability {} is not a Capability",
                req.capability
            )));
        }
        AiRouterService::route(self, &req).await
    }
}

#[cfg(test)]
mod tests;
