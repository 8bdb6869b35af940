//! `aicore.llm.v1.LlmService`: inference through the provider the catalog names for a model.
//! Providers stream [`Piece`]s; this module picks the model (the one named, else the AI router's
//! choice with its fallbacks), falls back when a provider fails before its first token, and turns
//! pieces into `InferStreamResponse` messages or one `InferResponse`.
//!
//! Streams are lazy: nothing is generated ahead of the reader, and dropping the stream (the client
//! went away) stops the provider (the grammar stops iterating, the HTTP upstream is disconnected,
//! a NATS worker is told to stop).
//!
//! May import: `proto`, `crate::kit`, and types of the `airouter`, `models` services (see
//! `crate::services`).

pub mod grammar;
pub mod grounded;
pub mod openai;
pub mod retrieval;
pub mod spend;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use proto::BoxStream;
use proto::aicore::airouter::v1::RouteRequest;
use proto::aicore::llm::v1::{
    InferRequest, InferResponse, InferStreamResponse, LlmServiceHandler, Usage,
};
use proto::aicore::models::v1::{Capability, Model, ModelStatus};

use crate::kit::context::Context;
use crate::kit::status::{Code, Status};
use crate::services::airouter::AiRouterService;
use crate::services::models::Catalog;
use spend::{Reservation, Spend};

/// `max_tokens` when the request says 0.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// The largest `max_tokens` accepted.
pub const MAX_MAX_TOKENS: u32 = 8192;
const MAX_MESSAGES: usize = 256;
const MAX_STOPS: usize = 4;

/// What a provider produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// The next piece of text (about one token).
    Text(String),
    /// The end: why, and the provider's own token counts if it reports them.
    End {
        /// "stop" or "length".
        finish: String,
        /// Token counts from the provider.
        usage: Option<Usage>,
    },
}

/// A provider's output.
pub type Pieces = BoxStream<Result<Piece, Status>>;

/// A way to run a model: the grammar generator, an OpenAI-compatible endpoint, a NATS worker.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Starts generating `req` with `model`. The stream must end with [`Piece::End`] or an error.
    async fn start(
        &self,
        model: &Model,
        req: &InferRequest,
        ctx: &Context,
    ) -> Result<Pieces, Status>;
}

/// A rough token count for text whose provider does not report one: about four bytes a token.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(4)).unwrap_or(u32::MAX)
}

/// The prompt's estimated tokens (every message's content plus a little for its role, and the
/// grounding as a model's prompt gets it).
pub fn estimate_prompt_tokens(req: &InferRequest) -> u32 {
    let grounding = req
        .grounding
        .as_ref()
        .filter(|g| !grounded::is_empty(g))
        .map_or(0, |g| estimate_tokens(&grounded::render(g)));
    req.messages
        .iter()
        .map(|m| estimate_tokens(&m.content).saturating_add(4))
        .fold(grounding, u32::saturating_add)
}

/// `max_tokens` with its default applied.
pub fn max_tokens(req: &InferRequest) -> u32 {
    if req.max_tokens == 0 {
        DEFAULT_MAX_TOKENS
    } else {
        req.max_tokens
    }
}

/// Every rule the request breaks, at once.
pub fn validate(req: &InferRequest) -> Result<(), Status> {
    let mut errors = Vec::new();
    if req.messages.is_empty() || req.messages.len() > MAX_MESSAGES {
        errors.push(format!("messages: 1 to {MAX_MESSAGES} are required"));
    }
    if let Some((i, m)) = req
        .messages
        .iter()
        .enumerate()
        .find(|(_, m)| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        errors.push(format!(
            "messages[{i}].role {:?} must be system, user or assistant",
            m.role
        ));
    }
    if req.max_tokens > MAX_MAX_TOKENS {
        errors.push(format!(
            "maxTokens must be 1 to {MAX_MAX_TOKENS} (0 means {DEFAULT_MAX_TOKENS}), got {}",
            req.max_tokens
        ));
    }
    if let Some(t) = req.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        errors.push(format!("temperature must be 0 to 2, got {t}"));
    }
    if req.stop.len() > MAX_STOPS || req.stop.iter().any(|s| s.is_empty() || s.len() > 64) {
        errors.push(format!("stop: at most {MAX_STOPS} sequences of 1-64 bytes"));
    }
    if let Some(why) = req.grounding.as_ref().and_then(grounded::check) {
        errors.push(why);
    }
    if Capability::try_from(req.capability).is_err() {
        errors.push(format!("capability {} is not a Capability", req.capability));
    }
    if req.model.len() > 128 || req.task.len() > 64 {
        errors.push("model is at most 128 characters, task at most 64".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(errors.join("; ")))
    }
}

/// The LLM service.
#[derive(Clone)]
pub struct LlmService {
    catalog: Catalog,
    router: AiRouterService,
    providers: Arc<HashMap<String, Arc<dyn Provider>>>,
    spend: Spend,
}

impl std::fmt::Debug for LlmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmService")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A started generation: the model that answered, its first piece, and the rest.
struct Started {
    model: String,
    first: Piece,
    rest: Pieces,
    prompt_tokens: u32,
    /// What the daily caps hold for this call, settled when it ends.
    reservation: Reservation,
    /// The model's cost per 1000 prompt and completion tokens.
    rates: (u64, u64),
}

impl LlmService {
    /// The service; `providers` by the catalog's provider names ("grammar", "openai", "nats");
    /// `spend` holds the daily caps every call is charged against.
    pub fn new(
        catalog: Catalog,
        providers: HashMap<String, Arc<dyn Provider>>,
        spend: Spend,
    ) -> Self {
        LlmService {
            router: AiRouterService::new(catalog.clone()),
            catalog,
            providers: Arc::new(providers),
            spend,
        }
    }

    /// Settles a finished call's reservation at what its tokens cost.
    async fn settle(&self, reservation: Reservation, rates: (u64, u64), usage: &Usage) {
        let used = spend::cost(
            rates.0,
            rates.1,
            usage.prompt_tokens,
            usage.completion_tokens,
        );
        self.spend.settle(reservation, used).await;
    }

    /// The models to try in order: the one named (only it: a caller who names a model gets that
    /// model or an error), else the AI router's choice and its fallbacks.
    async fn chain(&self, req: &InferRequest) -> Result<Vec<String>, Status> {
        if !req.model.is_empty() {
            return Ok(vec![req.model.clone()]);
        }
        let route = self
            .router
            .route(&RouteRequest {
                task: req.task.clone(),
                capability: req.capability,
                ..Default::default()
            })
            .await?;
        let mut chain = vec![route.model];
        chain.extend(route.fallbacks);
        Ok(chain)
    }

    async fn model(&self, name: &str, capability: Capability) -> Result<Model, Status> {
        match self.catalog.find(name).await? {
            // Never asked to do what it cannot (a translation of a model that only chats).
            Some(m) if !crate::services::models::can(&m, capability) => {
                Err(Status::failed_precondition(format!(
                    "model {name:?} cannot {}: its capabilities do not include {}",
                    crate::services::models::capability_word(capability),
                    capability.as_str_name()
                )))
            }
            Some(m) if m.status == ModelStatus::Active as i32 => Ok(m),
            Some(_) => Err(Status::failed_precondition(format!(
                "model {name:?} is retired"
            ))),
            None => Err(Status::not_found(format!("no model named {name:?}"))),
        }
    }

    /// Runs the chain until a model produces its first piece.
    async fn start(&self, ctx: &Context, req: &InferRequest) -> Result<Started, Status> {
        validate(req)?;
        let chain = self.chain(req).await?;
        let mut last: Option<Status> = None;
        for name in &chain {
            let attempt = async {
                let model = self.model(name, req.capability()).await?;
                let prompt = estimate_prompt_tokens(req);
                if model.context_length > 0
                    && u64::from(prompt) + u64::from(max_tokens(req))
                        > u64::from(model.context_length)
                {
                    return Err(Status::invalid_argument(format!(
                        "the prompt (about {prompt} tokens) plus maxTokens ({}) exceeds model {name:?}'s context of {} tokens",
                        max_tokens(req),
                        model.context_length
                    )));
                }
                let provider = self.providers.get(&model.provider).ok_or_else(|| {
                    Status::unavailable(
                        format!(
                            "model {name:?} needs the {} provider, which this process does not have (is NATS configured?)",
                            model.provider
                        ),
                        std::time::Duration::from_secs(5),
                    )
                })?;
                // The worst case is charged to the payer's and everyone's daily cap before any
                // provider is asked; what the call does not use goes back when it ends.
                let rates = (model.input_cost_per_1k, model.output_cost_per_1k);
                let worst = spend::cost(rates.0, rates.1, prompt, max_tokens(req));
                let reservation = self.spend.reserve(ctx.payer(), worst).await?;
                let first = match provider.start(&model, req, ctx).await {
                    Ok(mut pieces) => match pieces.next().await {
                        Some(Ok(first)) => Ok((first, pieces)),
                        Some(Err(e)) => Err(e),
                        None => Err(Status::unavailable(
                            format!("model {name:?} ended its stream without output"),
                            std::time::Duration::from_secs(1),
                        )),
                    },
                    Err(e) => Err(e),
                };
                match first {
                    Ok((first, rest)) => Ok(Started {
                        model: model.name.clone(),
                        first,
                        rest,
                        prompt_tokens: prompt,
                        reservation,
                        rates,
                    }),
                    Err(e) => {
                        self.spend.settle(reservation, 0).await;
                        Err(e)
                    }
                }
            };
            match attempt.await {
                Ok(started) => return Ok(started),
                // The caller is gone or out of time: no point in asking another model.
                Err(e)
                    if e.code() == Code::Canceled
                        || ctx.remaining().is_some_and(|r| r.is_zero()) =>
                {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(model = %name, code = e.code().as_str(), error = %e.message(), "model failed before its first token");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Status::internal("empty model chain")))
    }
}

/// Fills in what the provider did not report.
fn usage(reported: Option<Usage>, prompt_estimate: u32, completion_count: u32) -> Usage {
    let mut u = reported.unwrap_or_default();
    if u.prompt_tokens == 0 {
        u.prompt_tokens = prompt_estimate;
    }
    if u.completion_tokens == 0 {
        u.completion_tokens = completion_count;
    }
    u.total_tokens = u.prompt_tokens.saturating_add(u.completion_tokens);
    u
}

/// A stream in flight: what is left of the provider's pieces, and its reservation until it ends.
struct Streaming {
    pieces: Pieces,
    model: String,
    count: u32,
    reservation: Option<Reservation>,
}

fn ended_early(model: &str) -> Status {
    Status::unavailable(
        format!("model {model:?} ended its stream without finishing"),
        std::time::Duration::from_secs(1),
    )
}

impl LlmServiceHandler for LlmService {
    type Context = Context;
    type Error = Status;

    async fn infer(&self, ctx: Context, req: InferRequest) -> Result<InferResponse, Status> {
        let Started {
            model,
            first,
            mut rest,
            prompt_tokens,
            reservation,
            rates,
        } = self.start(&ctx, &req).await?;
        let mut text = String::new();
        let mut count = 0u32;
        let mut piece = Some(Ok(first));
        loop {
            match piece {
                Some(Ok(Piece::Text(t))) => {
                    text.push_str(&t);
                    count += 1;
                }
                Some(Ok(Piece::End { finish, usage: u })) => {
                    let usage = usage(u, prompt_tokens, count);
                    self.settle(reservation, rates, &usage).await;
                    return Ok(InferResponse {
                        model,
                        text,
                        finish_reason: finish,
                        usage: Some(usage),
                    });
                }
                // A failed call is charged what it streamed before it failed.
                Some(Err(e)) => {
                    let spent = usage(None, prompt_tokens, count);
                    self.settle(reservation, rates, &spent).await;
                    return Err(e);
                }
                None => {
                    let spent = usage(None, prompt_tokens, count);
                    self.settle(reservation, rates, &spent).await;
                    return Err(ended_early(&model));
                }
            }
            piece = rest.next().await;
        }
    }

    async fn infer_stream(
        &self,
        ctx: Context,
        req: InferRequest,
    ) -> Result<BoxStream<Result<InferStreamResponse, Status>>, Status> {
        let Started {
            model,
            first,
            rest,
            prompt_tokens,
            reservation,
            rates,
        } = self.start(&ctx, &req).await?;
        let pieces = futures_util::stream::iter([Ok(first)]).chain(rest);
        // The reservation is settled when the stream ends; a reader that goes away first leaves
        // the worst case charged (never less than was spent).
        let this = self.clone();
        let state = Streaming {
            pieces: Box::pin(pieces),
            model,
            count: 0,
            reservation: Some(reservation),
        };
        let out = futures_util::stream::unfold(state, move |mut st| {
            let this = this.clone();
            async move {
                let reservation = st.reservation.take()?;
                let (msg, ended) = match st.pieces.next().await {
                    Some(Ok(Piece::Text(delta))) => {
                        st.count += 1;
                        let m = InferStreamResponse {
                            model: st.model.clone(),
                            delta,
                            ..Default::default()
                        };
                        (Ok(m), None)
                    }
                    Some(Ok(Piece::End { finish, usage: u })) => {
                        let usage = usage(u, prompt_tokens, st.count);
                        let m = InferStreamResponse {
                            model: st.model.clone(),
                            delta: String::new(),
                            finish_reason: finish,
                            usage: Some(usage),
                        };
                        (Ok(m), Some(usage))
                    }
                    // A failed stream is charged what it streamed before it failed.
                    Some(Err(e)) => (Err(e), Some(usage(None, prompt_tokens, st.count))),
                    None => (
                        Err(ended_early(&st.model)),
                        Some(usage(None, prompt_tokens, st.count)),
                    ),
                };
                match ended {
                    Some(spent) => this.settle(reservation, rates, &spent).await,
                    None => st.reservation = Some(reservation),
                }
                Some((msg, st))
            }
        });
        Ok(Box::pin(out))
    }
}

#[cfg(test)]
mod tests;
