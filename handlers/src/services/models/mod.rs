//! `aicore.models.v1.ModelService`: the model catalog, mapping a model name to the provider that
//! serves it. Stored at `models.m.<name>` (protobuf `Model`) with the default's name at
//! `models.default`, so every replica and worker sharing the store sees one catalog.
//!
//! The built-in `grammar` model is always in the catalog (unless an operator registers a model of
//! that name over it) and is the default until an operator sets another, so `edge` answers LLM
//! calls out of the box.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::models::v1::{
    Capability, GetRequest, GetResponse, ListRequest, ListResponse, Model, ModelServiceHandler,
    ModelStatus, RegisterRequest, RegisterResponse, RetireRequest, RetireResponse,
    SetDefaultRequest, SetDefaultResponse,
};

use crate::kit::context::{Context, Principal};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// The built-in model's name.
pub const GRAMMAR: &str = "grammar";
const PREFIX: &str = "models.m.";
const DEFAULT_KEY: &str = "models.default";
const MAX_MODELS: usize = 1000;

/// The built-in procedural text model.
pub fn builtin_grammar() -> Model {
    Model {
        name: GRAMMAR.into(),
        provider: "grammar".into(),
        endpoint: String::new(),
        upstream_model: String::new(),
        context_length: 8192,
        input_cost_per_1k: 0,
        output_cost_per_1k: 0,
        typical_latency_ms: 1,
        tasks: Vec::new(),
        status: ModelStatus::Active as i32,
        is_default: false,
        description: "Built in, offline, not a language model: it composes text only from the \
                      request's grounding (sentences of the game's own content, the weather, the \
                      time of day) with a few fixed phrases that name nothing, and with no \
                      grounding says it has no world to speak from. Seeded: the same seed and \
                      request give the same text."
            .into(),
        // It repeats its grounding, so it never translates: it would answer English as German.
        capabilities: vec![Capability::Chat as i32],
    }
}

/// Most capabilities a model declares.
const MAX_CAPABILITIES: usize = 8;

/// The capability as the config file spells it ("translate").
pub fn capability_word(c: Capability) -> &'static str {
    match c {
        Capability::Unspecified | Capability::Chat => "chat",
        Capability::Translate => "translate",
    }
}

/// The capability the config file spells `word`, if any.
pub fn capability_from_word(word: &str) -> Option<Capability> {
    match word {
        "chat" => Some(Capability::Chat),
        "translate" => Some(Capability::Translate),
        _ => None,
    }
}

/// Whether `m` can do `c` (unspecified is chat; a model that declares nothing chats and does
/// nothing else).
pub fn can(m: &Model, c: Capability) -> bool {
    let wanted = if c == Capability::Unspecified {
        Capability::Chat
    } else {
        c
    };
    if m.capabilities.is_empty() {
        wanted == Capability::Chat
    } else {
        m.capabilities.contains(&(wanted as i32))
    }
}

/// Model names: 1-128 characters that are safe in store keys, URLs and logs.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'@'))
}

fn check_name(name: &str) -> Result<(), Status> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "model name {name:?} must be 1-128 letters, digits, '-', '_', ':' or '@'"
        )))
    }
}

/// Every rule a registration breaks, at once.
pub fn validate(m: &Model) -> Result<(), Status> {
    let mut errors = Vec::new();
    if !valid_name(&m.name) {
        errors.push(format!(
            "name {:?} must be 1-128 letters, digits, '-', '_', ':' or '@'",
            m.name
        ));
    }
    match m.provider.as_str() {
        "openai" => {
            let ok = (m.endpoint.starts_with("http://") || m.endpoint.starts_with("https://"))
                && m.endpoint.len() <= 2048
                && !m.endpoint.contains(char::is_whitespace);
            if !ok {
                errors.push(
                    "an openai model needs endpoint: its base URL, e.g. http://vllm:8000/v1".into(),
                );
            }
        }
        "nats" => {
            let ok = !m.endpoint.is_empty()
                && m.endpoint.len() <= 256
                && m.endpoint.split('.').all(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                });
            if !ok {
                errors.push("a nats model needs endpoint: the NATS subject of its workers, e.g. svc.llm.v1.infer_stream".into());
            }
        }
        "grammar" => {}
        other => errors.push(format!(
            "provider {other:?} must be openai, nats or grammar"
        )),
    }
    if m.upstream_model.len() > 256 {
        errors.push("upstreamModel is at most 256 characters".into());
    }
    if m.tasks.len() > 32 || m.tasks.iter().any(|t| t.is_empty() || t.len() > 64) {
        errors.push("tasks: at most 32, each 1-64 characters".into());
    }
    if m.description.chars().count() > 500 || m.description.chars().any(char::is_control) {
        errors.push("description is at most 500 printable characters".into());
    }
    if m.capabilities.len() > MAX_CAPABILITIES
        || m.capabilities.iter().any(|c| {
            !matches!(
                Capability::try_from(*c),
                Ok(Capability::Chat | Capability::Translate)
            )
        })
    {
        errors.push(format!(
            "capabilities: at most {MAX_CAPABILITIES} of CAPABILITY_CHAT, CAPABILITY_TRANSLATE"
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(errors.join("; ")))
    }
}

/// How long a replica answers reads from the catalog it last read. Every LLM call without a
/// model ranks the whole catalog; this keeps that off the store. A change made through this
/// replica is seen at once, one made through another within this long.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The catalog over the shared store. Cheap to clone (clones share the brief cache).
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Store>,
    recent: Arc<std::sync::Mutex<Recent>>,
}

/// The last catalog read, and a count of changes made here, so that a read that raced a change
/// is not kept.
#[derive(Default)]
struct Recent {
    changes: u64,
    read: Option<(std::time::Instant, Arc<[Model]>)>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

impl Catalog {
    /// A catalog over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Catalog {
            store,
            recent: Arc::default(),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every model (retired too), from the last read if it is fresh.
    async fn all(&self) -> Result<Arc<[Model]>, Status> {
        let changes = {
            let recent = self.recent();
            if let Some((at, models)) = &recent.read
                && at.elapsed() < FRESH_FOR
            {
                return Ok(Arc::clone(models));
            }
            recent.changes
        };
        let models: Arc<[Model]> = self.read_all().await?.into();
        let mut recent = self.recent();
        if recent.changes == changes {
            recent.read = Some((std::time::Instant::now(), Arc::clone(&models)));
        }
        Ok(models)
    }

    /// Forgets the last read, after a change made here.
    fn changed(&self) {
        let mut recent = self.recent();
        recent.changes += 1;
        recent.read = None;
    }

    async fn stored(&self, name: &str) -> Result<Option<(Model, u64)>, Status> {
        match self.store.get(&format!("{PREFIX}{name}")).await? {
            Some(v) => Ok(Some((
                Model::decode(v.value.as_ref()).map_err(Status::internal)?,
                v.version,
            ))),
            None => Ok(None),
        }
    }

    /// The default model's name.
    pub async fn default_name(&self) -> Result<String, Status> {
        Ok(match self.store.get(DEFAULT_KEY).await? {
            Some(v) => String::from_utf8(v.value.to_vec()).map_err(Status::internal)?,
            None => GRAMMAR.into(),
        })
    }

    /// A model by name (stored or built in), with `is_default` filled in.
    pub async fn get(&self, name: &str) -> Result<Option<Model>, Status> {
        let model = match self.stored(name).await? {
            Some((m, _)) => Some(m),
            None if name == GRAMMAR => Some(builtin_grammar()),
            None => None,
        };
        match model {
            Some(mut m) => {
                m.is_default = self.default_name().await? == m.name;
                Ok(Some(m))
            }
            None => Ok(None),
        }
    }

    /// Every model (retired too), ordered by name, read from the store.
    async fn read_all(&self) -> Result<Vec<Model>, Status> {
        let default = self.default_name().await?;
        let mut models = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(PREFIX, after.as_deref(), 256).await?;
            for (_, v) in page.entries {
                models.push(Model::decode(v.value.as_ref()).map_err(Status::internal)?);
            }
            match page.next_after {
                Some(next) if models.len() < MAX_MODELS => after = Some(next),
                _ => break,
            }
        }
        if !models.iter().any(|m| m.name == GRAMMAR) {
            models.push(builtin_grammar());
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        for m in &mut models {
            m.is_default = m.name == default;
        }
        Ok(models)
    }

    /// Every model, ordered by name (at most [`FRESH_FOR`] old).
    pub async fn list(&self, include_retired: bool) -> Result<Vec<Model>, Status> {
        Ok(self
            .all()
            .await?
            .iter()
            .filter(|m| include_retired || m.status != ModelStatus::Retired as i32)
            .cloned()
            .collect())
    }

    /// A model by name, as [`Catalog::list`] has it (at most [`FRESH_FOR`] old).
    pub async fn find(&self, name: &str) -> Result<Option<Model>, Status> {
        Ok(self.all().await?.iter().find(|m| m.name == name).cloned())
    }

    /// Registers or replaces a model (a retired one comes back active).
    pub async fn register(&self, mut model: Model) -> Result<Model, Status> {
        validate(&model)?;
        model.status = ModelStatus::Active as i32;
        if model.capabilities.is_empty() {
            model.capabilities.push(Capability::Chat as i32);
        }
        model.capabilities.sort_unstable();
        model.capabilities.dedup();
        model.is_default = false;
        let count = self
            .store
            .list(PREFIX, None, MAX_MODELS)
            .await?
            .entries
            .len();
        let existing = self.stored(&model.name).await?;
        if existing.is_none() && count >= MAX_MODELS {
            return Err(Status::failed_precondition(format!(
                "the catalog holds its maximum of {MAX_MODELS} models; retire and replace one"
            )));
        }
        self.store
            .put(
                &format!("{PREFIX}{}", model.name),
                Bytes::from(model.encode_to_vec()),
                None,
            )
            .await?;
        self.changed();
        model.is_default = self.default_name().await? == model.name;
        Ok(model)
    }

    /// Makes `name` the default; it must exist and be active.
    pub async fn set_default(&self, name: &str) -> Result<Model, Status> {
        check_name(name)?;
        let Some(mut model) = self.get(name).await? else {
            return Err(Status::not_found(format!("no model named {name:?}")));
        };
        if model.status == ModelStatus::Retired as i32 {
            return Err(Status::failed_precondition(format!(
                "model {name:?} is retired; register it again first"
            )));
        }
        self.store
            .put(DEFAULT_KEY, Bytes::from(name.to_owned()), None)
            .await?;
        self.changed();
        model.is_default = true;
        Ok(model)
    }

    /// Retires `name`: it stays listed (with `includeRetired`) but serves nothing. The default
    /// cannot be retired; set another first.
    pub async fn retire(&self, name: &str) -> Result<Model, Status> {
        check_name(name)?;
        if self.default_name().await? == name {
            return Err(Status::failed_precondition(format!(
                "model {name:?} is the default; set another default first"
            )));
        }
        let (mut model, version) = match self.stored(name).await? {
            Some(found) => found,
            None if name == GRAMMAR => (builtin_grammar(), 0),
            None => return Err(Status::not_found(format!("no model named {name:?}"))),
        };
        model.status = ModelStatus::Retired as i32;
        match self
            .store
            .put(
                &format!("{PREFIX}{name}"),
                Bytes::from(model.encode_to_vec()),
                Some(version),
            )
            .await
        {
            Ok(_) => {
                self.changed();
                Ok(model)
            }
            Err(StoreError::Conflict { .. }) => Err(Status::aborted(format!(
                "model {name:?} changed while retiring it; retry"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The model service.
#[derive(Debug, Clone)]
pub struct ModelService {
    catalog: Catalog,
}

impl ModelService {
    /// The service over `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        ModelService { catalog }
    }
}

/// Who may see where models are served: holders of the admin scope that sets it.
const SEES_ENDPOINTS: &str = "models.Register";

/// The model as `ctx` may see it: the endpoint is internal (a provider's URL, a NATS subject) and
/// shown only to operators.
fn redact(ctx: &Context, mut model: Model) -> Model {
    let operator = matches!(&ctx.principal,
        Some(Principal::Service { scopes, .. }) if scopes.iter().any(|s| s == SEES_ENDPOINTS));
    if !operator {
        model.endpoint.clear();
    }
    model
}

impl ModelServiceHandler for ModelService {
    type Context = Context;
    type Error = Status;

    async fn register(&self, _: Context, req: RegisterRequest) -> Result<RegisterResponse, Status> {
        let model = req
            .model
            .ok_or_else(|| Status::invalid_argument("model is required"))?;
        Ok(RegisterResponse {
            model: Some(self.catalog.register(model).await?),
        })
    }

    async fn get(&self, ctx: Context, req: GetRequest) -> Result<GetResponse, Status> {
        check_name(&req.name)?;
        match self.catalog.get(&req.name).await? {
            Some(m) => Ok(GetResponse {
                model: Some(redact(&ctx, m)),
            }),
            None => Err(Status::not_found(format!("no model named {:?}", req.name))),
        }
    }

    async fn list(&self, ctx: Context, req: ListRequest) -> Result<ListResponse, Status> {
        let models = self.catalog.list(req.include_retired).await?;
        Ok(ListResponse {
            models: models.into_iter().map(|m| redact(&ctx, m)).collect(),
        })
    }

    async fn set_default(
        &self,
        _: Context,
        req: SetDefaultRequest,
    ) -> Result<SetDefaultResponse, Status> {
        Ok(SetDefaultResponse {
            model: Some(self.catalog.set_default(&req.name).await?),
        })
    }

    async fn retire(&self, _: Context, req: RetireRequest) -> Result<RetireResponse, Status> {
        Ok(RetireResponse {
            model: Some(self.catalog.retire(&req.name).await?),
        })
    }
}

#[cfg(test)]
mod tests;
