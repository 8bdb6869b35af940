//! The workflow engine: runs kept in the store, driven step by step through the router, with
//! compensation when a step fails, and leases so one replica drives a run at a time.

use super::*;

pub(super) const RUN_PREFIX: &str = "orch.run.";
pub(super) const OPEN_PREFIX: &str = "orch.open.";
/// How long `Run` waits for a run without a deadline of its own.
pub(super) const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// A marker without its run is removed only after this long (the run may be being created).
pub(super) const ORPHAN_AFTER_MS: i64 = 60_000;
/// Runs one caller may start in a day, per process.
pub const RUNS_PER_DAY: u32 = 2_000;
/// How long a finished run stays for GetRun.
pub const RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How long a run that failed at its first step stays: it applied nothing, so there is nothing to
/// audit, and a player's refused runs (at most [`RUNS_PER_DAY`]) never pile up for a month.
pub const FAILED_RETENTION: Duration = Duration::from_secs(86_400);

/// `[orchestration]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestrationSettings {
    /// How long a replica owns a run it drives without writing it; then another may take over.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for OrchestrationSettings {
    fn default() -> Self {
        OrchestrationSettings {
            lease: Duration::from_secs(30),
        }
    }
}

impl OrchestrationSettings {
    /// Checks the range.
    pub fn validate(&self) -> Result<(), String> {
        if !(Duration::from_secs(2)..=Duration::from_secs(600)).contains(&self.lease) {
            return Err("orchestration.lease must be 2s to 10m".into());
        }
        Ok(())
    }
}

/// What the store keeps per run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) run: Run,
    /// The process driving it.
    pub(super) owner: String,
    pub(super) lease_until_ms: i64,
    /// Who started it (`service:<name>` or `player:<id>`).
    pub(super) started_by: String,
    /// What `Run` asked for, so a reused Idempotency-Key with another request is refused.
    pub(super) fingerprint: String,
    pub(super) compensating: bool,
    /// The workflow's definition digest when the run started.
    #[serde(default)]
    pub(super) digest: String,
    /// Steps an attempt of which ended with its outcome unknown (a timeout, the process dying
    /// during the call): possibly done, whatever a later attempt says, so they are compensated.
    #[serde(default)]
    pub(super) uncertain: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Marker {
    pub(super) created_at_ms: i64,
}

pub(super) fn now_ms() -> i64 {
    i64::try_from(crate::kit::clock::now_ms()).unwrap_or(i64::MAX)
}

pub(super) fn run_key(id: &str) -> String {
    format!("{RUN_PREFIX}{id}")
}

pub(super) fn open_key(id: &str) -> String {
    format!("{OPEN_PREFIX}{id}")
}

pub(super) fn step_key(run: &str, step: &str) -> String {
    format!("orch:{run}:{step}")
}

pub(super) fn hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// Whether a failed call certainly applied nothing (else it may have: compensate it).
pub(super) fn applied_nothing(code: Code) -> bool {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unauthenticated
        | Code::ResourceExhausted => true,
        Code::Canceled
        | Code::Unknown
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => false,
    }
}

/// Whether a failed call is worth another attempt with the same key.
pub(super) fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Aborted | Code::ResourceExhausted | Code::DeadlineExceeded
    )
}

pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(4)))
}

/// Template values of one run.
pub(super) struct RunScope<'a> {
    pub(super) run: &'a Run,
    pub(super) key: String,
}

pub(super) fn dig(mut value: Json, path: &str) -> Option<Json> {
    for part in path.split('.').filter(|p| !p.is_empty()) {
        value = value.get(part)?.clone();
    }
    Some(value)
}

/// Whole numbers as integers: a stored run's numbers come back as floats (`4.0`), which
/// proto3 JSON refuses for integer fields.
pub(super) fn integral(v: Json) -> Json {
    match v.as_f64() {
        #[allow(clippy::cast_possible_truncation)]
        Some(n) if v.is_f64() && n.fract() == 0.0 && n.abs() < 9.0e15 => Json::from(n as i64),
        _ => v,
    }
}

impl Scope for RunScope<'_> {
    fn lookup(&self, expr: &str) -> Option<Json> {
        self.find(expr).map(integral)
    }
}

impl RunScope<'_> {
    pub(super) fn find(&self, expr: &str) -> Option<Json> {
        match expr.split_once('.') {
            None if expr == "player" => Some(Json::String(self.run.player_id.clone())),
            Some(("run", "id")) => Some(Json::String(self.run.id.clone())),
            Some(("step", "key")) => Some(Json::String(self.key.clone())),
            Some(("input", name)) => {
                let input = serde_json::to_value(self.run.input.as_ref()?).ok()?;
                input.get(name).cloned()
            }
            Some(("steps", path)) => {
                let (step, rest) = path.split_once('.').unwrap_or((path, ""));
                let s = self.run.steps.iter().find(|s| s.name == step)?;
                dig(serde_json::to_value(s.output.as_ref()?).ok()?, rest)
            }
            _ => None,
        }
    }
}

/// The engine: drives runs, resumes unfinished ones, owns the tasks doing so.
pub struct Engine {
    pub(super) store: Arc<dyn Store>,
    pub(super) workflows: Arc<Workflows>,
    pub(super) caller: Caller,
    pub(super) lease: Duration,
    /// This process, as the owner of the runs it drives.
    pub(super) instance: String,
    /// The store is this process's alone (redb): a run owned by anyone else is a dead process's.
    pub(super) exclusive: bool,
    pub(super) tracker: TaskTracker,
    pub(super) stop: CancellationToken,
    pub(super) driving: Mutex<HashSet<String>>,
    /// Runs started per caller (per process): a run and its step records stay for days.
    pub(super) started: crate::kit::leaky_bucket::LeakyBuckets<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Removes a run from the set being driven when its drive ends, however it ends.
pub(super) struct Driving<'a>(&'a Engine, String);

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if let Ok(mut d) = self.0.driving.lock() {
            d.remove(&self.1);
        }
    }
}

pub(super) enum Next {
    Continue,
    Done,
}

impl Engine {
    /// An engine calling other services through `caller` (orchestration's).
    pub fn new(
        store: Arc<dyn Store>,
        workflows: Arc<Workflows>,
        caller: Caller,
        settings: OrchestrationSettings,
    ) -> Self {
        Engine {
            exclusive: store.backend() == "redb",
            store,
            workflows,
            caller,
            lease: settings.lease,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            driving: Mutex::new(HashSet::new()),
            started: crate::kit::leaky_bucket::LeakyBuckets::new(
                RUNS_PER_DAY,
                Duration::from_secs(86_400),
            ),
        }
    }

    /// A call's time limit: the step's, but at most half the lease, so the record is written
    /// (and the lease renewed) before another replica could take the run over.
    pub(super) fn attempt_timeout(&self, step: Duration) -> Duration {
        step.min(self.lease / 2)
    }

    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    pub(super) async fn read(&self, id: &str) -> Result<Option<(Record, u64)>, Status> {
        match self.store.get(&run_key(id)).await? {
            Some(v) => {
                let r = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("run record {id}: {e}")))?;
                Ok(Some((r, v.version)))
            }
            None => Ok(None),
        }
    }

    /// Writes `record` if it is still at `version`, renewing the lease; the new version, or
    /// `None` if another process changed it (it drives the run now).
    pub(super) async fn save(
        &self,
        record: &mut Record,
        version: u64,
    ) -> Result<Option<u64>, Status> {
        record.lease_until_ms = now_ms().saturating_add(self.lease_ms());
        let bytes = serde_json::to_vec(record).map_err(Status::internal)?;
        match self
            .store
            .put(&run_key(&record.run.id), Bytes::from(bytes), Some(version))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts driving run `id` here, unless it is driven here already. The task's handle.
    pub(super) fn spawn(self: &Arc<Self>, id: &str) -> Option<tokio::task::JoinHandle<()>> {
        {
            let mut driving = self.driving.lock().ok()?;
            if !driving.insert(id.to_owned()) {
                return None;
            }
        }
        let engine = Arc::clone(self);
        let id = id.to_owned();
        Some(self.tracker.spawn(async move { engine.drive(id).await }))
    }

    pub(super) async fn drive(self: Arc<Self>, id: String) {
        let _driving = Driving(&self, id.clone());
        loop {
            if self.stop.is_cancelled() {
                self.release(&id).await;
                return;
            }
            match self.advance(&id).await {
                Ok(Next::Continue) => {}
                Ok(Next::Done) => return,
                Err(e) => {
                    tracing::warn!(run = %id, error = %e.message(), "run paused by a store error; retrying");
                    tokio::select! {
                        () = self.stop.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Lets another process take the run at once (at shutdown, between steps).
    pub(super) async fn release(&self, id: &str) {
        if let Ok(Some((mut r, v))) = self.read(id).await
            && r.owner == self.instance
            && r.run.finished_at_ms == 0
        {
            r.lease_until_ms = 0;
            if let Ok(bytes) = serde_json::to_vec(&r) {
                let _ = self
                    .store
                    .put(&run_key(id), Bytes::from(bytes), Some(v))
                    .await;
            }
        }
    }

    /// One transition of run `id`.
    pub(super) async fn advance(&self, id: &str) -> Result<Next, Status> {
        let Some((mut r, version)) = self.read(id).await? else {
            return Ok(Next::Done);
        };
        if r.run.finished_at_ms != 0 {
            self.store.delete(&open_key(id), None).await?;
            return Ok(Next::Done);
        }
        if r.owner != self.instance {
            return Ok(Next::Done);
        }
        let workflow = self
            .workflows
            .get(&r.run.workflow)
            .filter(|w| w.digest == r.digest && w.steps.len() == r.run.steps.len())
            .cloned();
        let Some(workflow) = workflow else {
            // Driving it by another definition could skip a compensation or apply a step twice.
            r.run.error = format!(
                "workflow {} changed or was removed while this run was in flight; an operator must finish it (see its steps)",
                r.run.workflow
            );
            r.run.status = RunStatus::CompensationFailed.into();
            tracing::error!(run = %r.run.id, workflow = %r.run.workflow, "a run's workflow changed under it");
            return self.finish(r, version).await;
        };
        if r.compensating {
            return self.compensate_next(&workflow, r, version).await;
        }
        let Some(i) = r
            .run
            .steps
            .iter()
            .position(|s| s.status() != RunStatus::Succeeded)
        else {
            let output: serde_json::Map<String, Json> = r
                .run
                .steps
                .iter()
                .filter_map(|s| {
                    Some((
                        s.name.clone(),
                        serde_json::to_value(s.output.as_ref()?).ok()?,
                    ))
                })
                .collect();
            r.run.output = serde_json::from_value(Json::Object(output)).ok();
            r.run.status = RunStatus::Succeeded.into();
            return self.finish(r, version).await;
        };
        let step = &workflow.steps[i];
        {
            let s = &mut r.run.steps[i];
            // Running with no outcome recorded: the process died during the last attempt.
            if s.status() == RunStatus::Running
                && s.code.is_empty()
                && !r.uncertain.contains(&s.name)
            {
                r.uncertain.push(s.name.clone());
            }
            s.status = RunStatus::Running.into();
            s.attempts += 1;
            s.code.clear();
        }
        let attempt = r.run.steps[i].attempts;
        // Persisted before the call: if the process dies during it, the step is possibly done.
        let Some(version) = self.save(&mut r, version).await? else {
            return Ok(Next::Done);
        };
        let key = step_key(&r.run.id, &step.name);
        let result = self
            .call(&r.run, &step.call, key, self.attempt_timeout(step.timeout))
            .await;
        let s = &mut r.run.steps[i];
        match result {
            Ok(output) => {
                s.status = RunStatus::Succeeded.into();
                s.output = Some(output);
                s.error.clear();
                s.code.clear();
            }
            Err(e) => {
                s.error = e.message().to_owned();
                s.code = e.code().as_str().to_owned();
                if !applied_nothing(e.code()) && !r.uncertain.contains(&step.name) {
                    r.uncertain.push(step.name.clone());
                }
                if transient(e.code()) && attempt < step.attempts {
                    if self.save(&mut r, version).await?.is_none() {
                        return Ok(Next::Done);
                    }
                    tokio::select! {
                        () = self.stop.cancelled() => {}
                        () = tokio::time::sleep(backoff(attempt)) => {}
                    }
                    return Ok(Next::Continue);
                }
                if !r.uncertain.contains(&step.name) {
                    r.run.steps[i].status = RunStatus::Failed.into();
                }
                // Else it stays `running`: possibly done, so it is compensated too.
                r.run.error = format!("step {}: {}", step.name, e.message());
                r.run.status = RunStatus::Compensating.into();
                r.compensating = true;
                tracing::info!(run = %r.run.id, workflow = %workflow.name, step = %step.name, code = e.code().as_str(), "step failed; compensating");
            }
        }
        Ok(match self.save(&mut r, version).await? {
            Some(_) => Next::Continue,
            None => Next::Done,
        })
    }

    /// Undoes the last step still to undo, or ends the run.
    pub(super) async fn compensate_next(
        &self,
        workflow: &Workflow,
        mut r: Record,
        version: u64,
    ) -> Result<Next, Status> {
        let pending = (0..r.run.steps.len()).rev().find(|&j| {
            let s = &r.run.steps[j];
            matches!(s.status(), RunStatus::Succeeded | RunStatus::Running)
                && !s.compensated
                && workflow
                    .steps
                    .get(j)
                    .is_some_and(|d| d.compensate.is_some())
        });
        let Some(j) = pending else {
            let undone = r.run.steps.iter().any(|s| s.compensated);
            r.run.status = if undone {
                RunStatus::Compensated
            } else {
                RunStatus::Failed
            }
            .into();
            return self.finish(r, version).await;
        };
        let step = &workflow.steps[j];
        let Some(comp) = &step.compensate else {
            return Ok(Next::Continue);
        };
        let key = format!("{}:undo", step_key(&r.run.id, &step.name));
        let mut version = version;
        // None until an attempt is made (a placeholder `Status::internal` would log an error).
        let mut outcome = None;
        for attempt in 1..=step.attempts {
            // Each attempt renews the lease, so no other replica takes the run meanwhile.
            match self.save(&mut r, version).await? {
                Some(v) => version = v,
                None => return Ok(Next::Done),
            }
            // The compensation's template sees the forward step's key as {{step.key}}.
            let scope_key = step_key(&r.run.id, &step.name);
            let result = self
                .call_with(
                    &r.run,
                    &comp.call,
                    scope_key,
                    key.clone(),
                    self.attempt_timeout(step.timeout),
                )
                .await;
            match outcome.insert(result) {
                Err(e) if transient(e.code()) && attempt < step.attempts => {
                    tokio::select! {
                        () = self.stop.cancelled() => return Ok(Next::Done),
                        () = tokio::time::sleep(backoff(attempt)) => {}
                    }
                }
                _ => break,
            }
        }
        let s = &mut r.run.steps[j];
        match outcome.unwrap_or_else(|| Err(Status::internal("no attempt made"))) {
            Ok(_) => {
                s.compensated = true;
                s.status = RunStatus::Compensated.into();
            }
            Err(e) if comp.nothing_to_undo.contains(&e.code()) => {
                s.compensated = true;
                s.status = RunStatus::Compensated.into();
                s.compensation_error = format!("nothing to undo: {}", e.message());
            }
            Err(e) => {
                s.compensation_error = format!("{}: {}", e.code().as_str(), e.message());
                s.status = RunStatus::CompensationFailed.into();
                tracing::error!(run = %r.run.id, workflow = %workflow.name, step = %step.name, code = e.code().as_str(), "compensation failed; the run needs an operator");
                r.run.status = RunStatus::CompensationFailed.into();
                return self.finish(r, version).await;
            }
        }
        Ok(match self.save(&mut r, version).await? {
            Some(_) => Next::Continue,
            None => Next::Done,
        })
    }

    pub(super) async fn finish(&self, mut r: Record, version: u64) -> Result<Next, Status> {
        r.run.finished_at_ms = now_ms();
        if self.save(&mut r, version).await?.is_some() {
            self.store.delete(&open_key(&r.run.id), None).await?;
        }
        Ok(Next::Done)
    }

    pub(super) async fn call(
        &self,
        run: &Run,
        call: &CallDef,
        key: String,
        timeout: Duration,
    ) -> Result<pbjson_types::Value, Status> {
        self.call_with(run, call, key.clone(), key, timeout).await
    }

    /// Renders `call` (with `{{step.key}}` = `scope_key`) and makes it with idempotency `key`.
    pub(super) async fn call_with(
        &self,
        run: &Run,
        call: &CallDef,
        scope_key: String,
        key: String,
        timeout: Duration,
    ) -> Result<pbjson_types::Value, Status> {
        let scope = RunScope {
            run,
            key: scope_key,
        };
        let input = render(&call.input, &scope).map_err(Status::invalid_argument)?;
        let json = serde_json::to_vec(&input).map_err(Status::internal)?;
        let body = (call.method.transcode.json_to_proto)(&json)
            .map_err(|e| Status::invalid_argument(format!("{}: {e}", call_name(call.method))))?;
        let ctx = Context {
            deadline: Some(Instant::now() + timeout),
            request_id: format!("{}-{}", run.id, call.method.snake),
            ..Context::default()
        };
        let mut out = ctx.outgoing();
        if call.method.mutates {
            out = out.idempotent(key);
        }
        let reply = self
            .caller
            .unary(out, call.method, Bytes::from(body))
            .await?;
        let json = (call.method.transcode.proto_to_json)(&reply)
            .map_err(|e| Status::internal(e.to_string()))?;
        serde_json::from_slice(&json).map_err(Status::internal)
    }

    /// Resumes unfinished runs now and every half lease until `stop`; then stops driving
    /// (between steps) and waits for the drives to end.
    pub async fn resume(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.lease / 2).max(Duration::from_secs(1));
        loop {
            if let Err(e) = self.resume_once().await {
                tracing::warn!(error = %e.message(), "resuming runs failed; retrying");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    pub(super) async fn resume_once(self: &Arc<Self>) -> Result<(), Status> {
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(OPEN_PREFIX, after.as_deref(), 200).await?;
            for (key, value) in &page.entries {
                // One run that cannot be read does not keep the others from resuming.
                if let Err(e) = self.resume_entry(key, value).await {
                    tracing::warn!(marker = %key, error = %e.message(), "cannot resume this run; skipped");
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    pub(super) async fn resume_entry(
        self: &Arc<Self>,
        key: &str,
        value: &crate::kit::store::Versioned,
    ) -> Result<(), Status> {
        let Some(id) = key.strip_prefix(OPEN_PREFIX) else {
            return Ok(());
        };
        if self.driving.lock().is_ok_and(|d| d.contains(id)) {
            return Ok(());
        }
        let now = now_ms();
        match self.read(id).await? {
            None => {
                let created =
                    serde_json::from_slice::<Marker>(&value.value).map_or(0, |m| m.created_at_ms);
                if now - created > ORPHAN_AFTER_MS {
                    self.store.delete(key, Some(value.version)).await.ok();
                }
            }
            Some((r, _)) if r.run.finished_at_ms != 0 => {
                self.store.delete(key, None).await?;
            }
            Some((mut r, version)) => {
                let mine = r.owner == self.instance;
                if mine || r.lease_until_ms <= now || self.exclusive {
                    r.owner.clone_from(&self.instance);
                    if self.save(&mut r, version).await?.is_some() {
                        if !mine {
                            tracing::info!(run = %id, workflow = %r.run.workflow, "resuming an unfinished run");
                        }
                        self.spawn(id);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Deletes runs that finished more than [`RETENTION`] ago, and runs that failed at their first
/// step more than [`FAILED_RETENTION`] ago (the janitor's pass).
pub async fn prune_finished(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    let ago =
        |d: Duration| now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (cutoff, failed_cutoff) = (ago(RETENTION), ago(FAILED_RETENTION));
    crate::kit::store::prune_prefix(
        store,
        RUN_PREFIX,
        move |v| {
            serde_json::from_slice::<Record>(v).is_ok_and(|r| {
                let done = r.run.finished_at_ms;
                let failed = r.run.status == RunStatus::Failed as i32;
                done != 0 && (done < cutoff || (failed && done < failed_cutoff))
            })
        },
        stop,
    )
    .await
}

/// The service over an [`Engine`].
#[derive(Debug, Clone)]
pub struct OrchestrationService {
    pub(super) engine: Arc<Engine>,
}

impl OrchestrationService {
    /// Serves `engine`'s runs.
    pub fn new(engine: Arc<Engine>) -> Self {
        OrchestrationService { engine }
    }
}

/// The run's input, checked against the workflow's inputs.
pub(super) fn check_input(
    w: &Workflow,
    input: Option<pbjson_types::Value>,
) -> Result<Json, Status> {
    let json = match input {
        Some(v) => serde_json::to_value(v).map_err(Status::internal)?,
        None => Json::Object(serde_json::Map::new()),
    };
    let Json::Object(map) = json else {
        return Err(Status::invalid_argument("input must be an object"));
    };
    if let Some(k) = map.keys().find(|k| !w.inputs.iter().any(|i| &i.name == *k)) {
        return Err(Status::invalid_argument(format!(
            "input.{k} is not an input of {} (inputs: {})",
            w.name,
            w.inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for i in &w.inputs {
        let v = map.get(&i.name).ok_or_else(|| {
            Status::invalid_argument(format!("input.{} is required: {}", i.name, i.description))
        })?;
        let ok = match i.kind {
            InputType::String => v.as_str().is_some_and(|s| {
                !s.trim().is_empty()
                    && i64::try_from(s.chars().count()).unwrap_or(i64::MAX) <= i.max
                    && !s.chars().any(char::is_control)
            }),
            InputType::Integer => v
                .as_f64()
                .is_some_and(|n| n.fract() == 0.0 && n >= 1.0 && n <= i.max as f64),
        };
        if !ok {
            return Err(Status::invalid_argument(match i.kind {
                InputType::String => {
                    format!(
                        "input.{} must be 1 to {} printable characters",
                        i.name, i.max
                    )
                }
                InputType::Integer => format!(
                    "input.{} must be a whole number from 1 to {}",
                    i.name, i.max
                ),
            }));
        }
    }
    Ok(Json::Object(map))
}
