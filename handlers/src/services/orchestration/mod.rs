//! `aicore.orchestration.v1.OrchestrationService`: a small workflow engine on the store, with
//! the guarantees of Step Functions' standard workflows at this scale.
//!
//! - A run is one record, `orch.run.<id>`, written (compare-and-set) after every transition, and
//!   an open-run marker `orch.open.<id>` until it ends, so unfinished runs are found at start.
//! - Each step's call carries the idempotency key `orch:<run>:<step>` (its compensation
//!   `orch:<run>:<step>:undo`), so a step retried, or re-run after a crash, applies once.
//! - A step that fails undoes the steps before it, last first, each once. A step whose outcome
//!   is unknown (timed out, or the process died during it) counts as possibly done and is undone
//!   too; undoing what never happened is a no-op (the compensation's `nothing_to_undo` codes,
//!   `payment.Reverse` barring the key). A compensation that fails stops the run in
//!   `compensation_failed`, visible in `GetRun`.
//! - One process drives a run at a time: the record names its owner and a lease, renewed on
//!   every write; another replica takes over a run whose lease lapsed. At shutdown a run is
//!   released between steps, so another replica (or the next start) picks it up at once.
//! - `Run` with the same Idempotency-Key (from the same caller) is the same run.
//!
//! May import: `proto`, `crate::kit`, and types of the `router` service (see `crate::services`).

pub mod content;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::Transport as _;
use proto::aicore::orchestration::v1::{
    GetRunRequest, GetRunResponse, ListWorkflowsRequest, ListWorkflowsResponse,
    OrchestrationServiceHandler, Run, RunRequest, RunResponse, RunStatus, StepResult,
    WorkflowDefinition, WorkflowInput, WorkflowStep,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use content::Workflows;
use content::{Access, CallDef, InputType, Scope, Workflow, call_name, render};

use crate::kit::calls::Caller;
use crate::kit::context::{Context, Principal};
use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

mod engine;
pub use engine::*;

impl OrchestrationServiceHandler for OrchestrationService {
    type Context = Context;
    type Error = Status;

    async fn run(&self, ctx: Context, req: RunRequest) -> Result<RunResponse, Status> {
        let engine = &self.engine;
        let w = engine.workflows.get(&req.workflow).ok_or_else(|| {
            Status::not_found(format!(
                "no workflow {:?}; ListWorkflows lists them",
                req.workflow
            ))
        })?;
        if w.access == Access::Service && !matches!(ctx.principal, Some(Principal::Service { .. }))
        {
            return Err(Status::permission_denied(format!(
                "workflow {} is run by game services only",
                w.name
            )));
        }
        // A key may start it only if it may make every call it makes: a key scoped to
        // orchestration alone cannot credit through grant_reward.
        if let Some(Principal::Service { scopes, .. }) = &ctx.principal
            && let Some(step) = w
                .steps
                .iter()
                .find(|s| !crate::kit::context::scope_allows(scopes, s.call.method))
        {
            return Err(Status::permission_denied(format!(
                "workflow {} calls {}, which the key's scopes do not cover",
                w.name,
                call_name(step.call.method)
            )));
        }
        let player = ctx.player(&req.player_id)?;
        let input = check_input(w, req.input)?;
        let key = ctx.idempotency_key.as_deref().ok_or_else(|| {
            Status::invalid_argument(
                "Run needs an Idempotency-Key: the same key is the same run, so a retry never starts a second one",
            )
        })?;
        let who = ctx
            .principal
            .as_ref()
            .map(Principal::describe)
            .unwrap_or_default();
        let fingerprint = hex(format!("{}\n{player}\n{input}", w.name).as_bytes());
        let id = format!("run-{}", &hex(format!("{who}\n{key}").as_bytes())[..32]);
        let existing = engine.read(&id).await?;
        let handle = match existing {
            Some((r, _)) => {
                if r.fingerprint != fingerprint {
                    return Err(Status::unprocessable(
                        "this Idempotency-Key was already used for a different run",
                    ));
                }
                None
            }
            None => {
                if let Some(wait) = engine.started.full(&who) {
                    return Err(Status::new(
                        Code::ResourceExhausted,
                        format!("at most {RUNS_PER_DAY} runs a day per caller"),
                    )
                    .with_retry_after(wait.max(Duration::from_secs(1))));
                }
                engine.started.add(&who);
                let now = now_ms();
                let marker =
                    serde_json::to_vec(&Marker { created_at_ms: now }).map_err(Status::internal)?;
                engine
                    .store
                    .put(&open_key(&id), Bytes::from(marker), None)
                    .await?;
                let mut record = Record {
                    run: Run {
                        id: id.clone(),
                        workflow: w.name.clone(),
                        status: RunStatus::Running.into(),
                        steps: w
                            .steps
                            .iter()
                            .map(|s| StepResult {
                                name: s.name.clone(),
                                call: call_name(s.call.method),
                                compensation: s
                                    .compensate
                                    .as_ref()
                                    .map(|c| call_name(c.call.method))
                                    .unwrap_or_default(),
                                ..StepResult::default()
                            })
                            .collect(),
                        started_at_ms: now,
                        player_id: player,
                        input: serde_json::from_value(input).ok(),
                        ..Run::default()
                    },
                    owner: engine.instance.clone(),
                    lease_until_ms: 0,
                    started_by: who,
                    fingerprint,
                    compensating: false,
                    digest: w.digest.clone(),
                    uncertain: Vec::new(),
                };
                match engine.save(&mut record, 0).await? {
                    Some(_) => {
                        tracing::info!(run = %id, workflow = %w.name, "run started");
                        engine.spawn(&id)
                    }
                    // Started by a concurrent call with the same key.
                    None => None,
                }
            }
        };
        let wait_until = ctx
            .deadline
            .map(|d| d.checked_sub(Duration::from_millis(50)).unwrap_or(d))
            .unwrap_or_else(|| Instant::now() + DEFAULT_WAIT);
        if let Some(handle) = handle {
            let _ = tokio::time::timeout_at(wait_until.into(), handle).await;
        } else {
            // Someone else drives it: report it as it is once it ends, or at the deadline.
            while Instant::now() < wait_until {
                match engine.read(&id).await? {
                    Some((r, _)) if r.run.finished_at_ms != 0 => break,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        let (r, _) = engine
            .read(&id)
            .await?
            .ok_or_else(|| Status::internal(format!("run {id} vanished")))?;
        Ok(RunResponse { run: Some(r.run) })
    }

    async fn get_run(&self, ctx: Context, req: GetRunRequest) -> Result<GetRunResponse, Status> {
        let valid = req.run_id.strip_prefix("run-").is_some_and(|h| {
            h.len() == 32
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        });
        let missing = || Status::not_found(format!("no run {:?}", req.run_id));
        if !valid {
            return Err(missing());
        }
        let (r, _) = self.engine.read(&req.run_id).await?.ok_or_else(missing)?;
        match &ctx.principal {
            Some(Principal::Service { .. }) => {}
            // A player sees only their own runs; another's is as if it did not exist.
            Some(Principal::Player { player_id }) if *player_id == r.run.player_id => {}
            Some(Principal::Player { .. }) => return Err(missing()),
            None => return Err(Status::unauthenticated("authentication required")),
        }
        Ok(GetRunResponse { run: Some(r.run) })
    }

    async fn list_workflows(
        &self,
        _: Context,
        _: ListWorkflowsRequest,
    ) -> Result<ListWorkflowsResponse, Status> {
        Ok(ListWorkflowsResponse {
            workflows: self
                .engine
                .workflows
                .iter()
                .map(|w| WorkflowDefinition {
                    name: w.name.clone(),
                    description: w.description.clone(),
                    steps: w.steps.iter().map(|s| s.name.clone()).collect(),
                    access: match w.access {
                        Access::Player => "player",
                        Access::Service => "service",
                    }
                    .into(),
                    step_calls: w
                        .steps
                        .iter()
                        .map(|s| WorkflowStep {
                            name: s.name.clone(),
                            call: call_name(s.call.method),
                            compensation: s
                                .compensate
                                .as_ref()
                                .map(|c| call_name(c.call.method))
                                .unwrap_or_default(),
                        })
                        .collect(),
                    inputs: w
                        .inputs
                        .iter()
                        .map(|i| WorkflowInput {
                            name: i.name.clone(),
                            r#type: match i.kind {
                                InputType::String => "string",
                                InputType::Integer => "integer",
                            }
                            .into(),
                            required: true,
                            description: i.description.clone(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
