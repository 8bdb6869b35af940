//! The edge's side of the LLM: provider settings (`[llm]`), building the providers, models the
//! config file declares, and the token quota that meters LLM calls by cost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use handlers::services::llm::openai::{OpenAiOptions, OpenAiProvider};
use handlers::services::llm::{Provider, grammar::GrammarProvider};
use handlers::services::models::Catalog;
use proto::aicore::models::v1::Model;
use serde::{Deserialize, Serialize};

/// A model the config file declares; registered at start when the catalog lacks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name clients use.
    pub name: String,
    /// "openai", "nats" or "grammar".
    pub provider: String,
    /// Base URL (openai) or subject (nats).
    #[serde(default)]
    pub endpoint: String,
    /// The provider's name for it, if different.
    #[serde(default)]
    pub upstream_model: String,
    /// Context window in tokens (0: unknown).
    #[serde(default)]
    pub context_length: u32,
    /// Micro-units per 1000 prompt tokens.
    #[serde(default)]
    pub input_cost_per_1k: u64,
    /// Micro-units per 1000 completion tokens.
    #[serde(default)]
    pub output_cost_per_1k: u64,
    /// Typical time to first token.
    #[serde(default)]
    pub typical_latency_ms: u32,
    /// Tasks it suits ("dialogue", "narration", ...).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// What it can do: "chat", "translate" (empty: chat only). Only a model that declares
    /// "translate" is asked to translate.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Make it the default model.
    #[serde(default)]
    pub default: bool,
}

/// `[llm]` in the config file.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Pause between the grammar model's tokens (0: as fast as the client reads).
    #[serde(with = "humantime_serde")]
    pub grammar_token_interval: Duration,
    /// Connecting to an OpenAI-compatible upstream.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// A whole upstream call.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// From the request to the upstream's first token; a provider slower than this counts as
    /// failed (and the AI router's next model is tried).
    #[serde(with = "humantime_serde")]
    pub first_token_timeout: Duration,
    /// API keys by upstream origin, e.g. `"https://api.openai.com" = "sk-..."`; a key is only
    /// sent to its origin. Also `EDGE_LLM_API_KEYS="origin=key,origin=key"`.
    #[serde(skip_serializing)]
    pub api_keys: BTreeMap<String, String>,
    /// Models registered at start when missing from the catalog.
    pub models: Vec<ModelEntry>,
    /// Daily spend caps in the catalog's cost units (micro-units of currency), shared by every
    /// replica through the store: `per_payer_daily` for each player (or service key), and
    /// `total_daily` for everyone; 0 is no cap.
    pub spend: handlers::services::llm::spend::SpendCaps,
    /// Tokens of lore retrieved into one story Narrate or npc Talk prompt, charged to the player
    /// with the rest of the prompt; 0 retrieves none.
    pub lore_budget: u32,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("api_keys", &self.api_keys.keys().collect::<Vec<_>>())
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            grammar_token_interval: Duration::ZERO,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
            first_token_timeout: Duration::from_secs(30),
            api_keys: BTreeMap::new(),
            models: Vec::new(),
            spend: handlers::services::llm::spend::SpendCaps::default(),
            lore_budget: handlers::services::llm::retrieval::DEFAULT_BUDGET,
        }
    }
}

impl LlmConfig {
    /// Positive timeouts, a burst that fits one maximal call, valid model entries and origins.
    pub fn validate(&self) -> Result<(), String> {
        if self.connect_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.first_token_timeout.is_zero()
        {
            return Err("llm: timeouts must be above zero".into());
        }
        for origin in self.api_keys.keys() {
            if handlers::services::llm::openai::origin(origin).as_deref() != Some(origin.as_str()) {
                return Err(format!(
                    "llm.api_keys: {origin:?} must be an origin such as https://api.openai.com (scheme and host, lowercase, no path)"
                ));
            }
        }
        let max = handlers::services::llm::retrieval::MAX_BUDGET;
        if self.lore_budget > max {
            return Err(format!(
                "llm.lore_budget must be 0 to {max} tokens, got {}",
                self.lore_budget
            ));
        }
        for m in &self.models {
            if let Some(bad) = m
                .capabilities
                .iter()
                .find(|c| handlers::services::models::capability_from_word(c).is_none())
            {
                return Err(format!(
                    "llm.models {:?}: capability {bad:?} must be \"chat\" or \"translate\"",
                    m.name
                ));
            }
            handlers::services::models::validate(&m.to_model())
                .map_err(|s| format!("llm.models {:?}: {}", m.name, s.message()))?;
        }
        if self.models.iter().filter(|m| m.default).count() > 1 {
            return Err("llm.models: at most one model may be the default".into());
        }
        Ok(())
    }

    /// Adds `origin=key,origin=key` (from the environment) to the keys.
    pub fn add_api_keys(&mut self, list: &str) {
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            let (origin, key) = pair.split_once('=').unwrap_or((pair, ""));
            self.api_keys
                .insert(origin.trim().to_owned(), key.trim().to_owned());
        }
    }
}

impl ModelEntry {
    fn to_model(&self) -> Model {
        Model {
            name: self.name.clone(),
            provider: self.provider.clone(),
            endpoint: self.endpoint.clone(),
            upstream_model: self.upstream_model.clone(),
            context_length: self.context_length,
            input_cost_per_1k: self.input_cost_per_1k,
            output_cost_per_1k: self.output_cost_per_1k,
            typical_latency_ms: self.typical_latency_ms,
            tasks: self.tasks.clone(),
            capabilities: self
                .capabilities
                .iter()
                .filter_map(|c| handlers::services::models::capability_from_word(c))
                .map(|c| c as i32)
                .collect(),
            ..Default::default()
        }
    }
}

/// The providers this process has: grammar and openai always, nats when given a client.
pub fn providers(
    config: &LlmConfig,
    nats: Option<Arc<dyn Provider>>,
) -> Result<HashMap<String, Arc<dyn Provider>>, String> {
    let mut map: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    map.insert(
        "grammar".into(),
        Arc::new(GrammarProvider {
            token_interval: config.grammar_token_interval,
        }),
    );
    let openai = OpenAiProvider::new(OpenAiOptions {
        api_keys: config
            .api_keys
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        connect_timeout: config.connect_timeout,
        request_timeout: config.request_timeout,
        first_token_timeout: config.first_token_timeout,
    })
    .map_err(|e| format!("cannot build the HTTP client for model providers: {e}"))?;
    map.insert("openai".into(), Arc::new(openai));
    if let Some(nats) = nats {
        map.insert("nats".into(), nats);
    }
    Ok(map)
}

/// Registers the config file's models that the catalog does not have yet (an operator's later
/// changes through the models service win), and sets the configured default if none is stored.
pub async fn seed_catalog(catalog: &Catalog, config: &LlmConfig) -> Result<(), String> {
    for entry in &config.models {
        let known = catalog
            .get(&entry.name)
            .await
            .map_err(|e| e.message().to_owned())?;
        if known.is_none() {
            catalog
                .register(entry.to_model())
                .await
                .map_err(|e| format!("cannot register model {:?}: {}", entry.name, e.message()))?;
        }
        if entry.default
            && catalog.default_name().await.ok().as_deref()
                == Some(handlers::services::models::GRAMMAR)
        {
            catalog
                .set_default(&entry.name)
                .await
                .map_err(|e| e.message().to_owned())?;
        }
    }
    Ok(())
}

/// The `nats` provider: a model served by remote workers on the subject in the model's
/// `endpoint`, spoken to with the streaming protocol of `nats::stream` (an `llm` InferStream
/// request; the worker may be an `edge worker` serving `llm` or any worker speaking the protocol).
pub struct NatsProvider {
    nats: crate::nats::Nats,
    start_timeout: Duration,
}

impl NatsProvider {
    /// A provider over `nats`; a worker must start its stream within `start_timeout`.
    pub fn new(nats: crate::nats::Nats, start_timeout: Duration) -> Self {
        NatsProvider {
            nats,
            start_timeout,
        }
    }
}

#[async_trait::async_trait]
impl Provider for NatsProvider {
    async fn start(
        &self,
        model: &Model,
        req: &proto::aicore::llm::v1::InferRequest,
        ctx: &handlers::Context,
    ) -> Result<handlers::services::llm::Pieces, handlers::Status> {
        use futures_util::StreamExt as _;
        use prost::Message as _;
        use proto::aicore::llm::v1::InferStreamResponse;
        // The worker runs the model under the name its own catalog knows it by.
        let mut upstream = req.clone();
        upstream.model = if model.upstream_model.is_empty() {
            String::new()
        } else {
            model.upstream_model.clone()
        };
        let life = ctx.remaining().unwrap_or(Duration::from_secs(3600));
        let stream = crate::nats::stream::open(
            &self.nats.client,
            &self.nats.up,
            model.endpoint.clone().into(),
            crate::nats::signing::signed(
                self.nats.keys.as_deref(),
                &model.endpoint,
                crate::nats::headers::request_headers(ctx, life),
            ),
            bytes::Bytes::from(upstream.encode_to_vec()),
            self.start_timeout,
            "llm",
        )
        .await?;
        let pieces = stream.map(|item| {
            let bytes = item?;
            let m = InferStreamResponse::decode(bytes.as_ref()).map_err(|e| {
                tracing::warn!(error = %e, "undecodable message from a NATS model worker");
                handlers::Status::bad_gateway(
                    "a model worker sent a message that is not an InferStreamResponse",
                )
            })?;
            Ok(if m.finish_reason.is_empty() {
                handlers::services::llm::Piece::Text(m.delta)
            } else {
                handlers::services::llm::Piece::End {
                    finish: m.finish_reason,
                    usage: m.usage,
                }
            })
        });
        Ok(Box::pin(pieces))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proto::aicore::models::v1::Capability;

    use super::*;

    #[test]
    fn models_declare_capabilities_by_word_and_the_lore_budget_is_bounded() {
        let mut config: LlmConfig = toml::from_str(
            "lore_budget = 120\n[[models]]\nname = \"polyglot\"\nprovider = \"grammar\"\ncapabilities = [\"chat\", \"translate\"]\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.lore_budget, 120);
        assert_eq!(
            config.models[0].to_model().capabilities,
            [Capability::Chat as i32, Capability::Translate as i32]
        );
        config.models[0].capabilities = vec!["Translate".into()];
        let e = config.validate().unwrap_err();
        assert!(
            e.contains("\"Translate\" must be \"chat\" or \"translate\""),
            "{e}"
        );
        config.models.clear();
        config.lore_budget = handlers::services::llm::retrieval::MAX_BUDGET + 1;
        assert!(config.validate().unwrap_err().contains("llm.lore_budget"));
        assert_eq!(
            LlmConfig::default().lore_budget,
            handlers::services::llm::retrieval::DEFAULT_BUDGET
        );
    }
}
