//! `aicore.language.v1.LanguageService`: the game's system messages in every shipped locale
//! (Project Fluent, `handlers/data/language/<locale>.ftl`), and free text translated through
//! `llm`, cached in the store.
//!
//! `Localize` negotiates the locale (`pl-PL` is `pl`; an unknown one is the default), then
//! looks the message up along the chain [negotiated, default]: a message missing in a locale
//! falls back to English, one missing everywhere is `not_found`. Arguments are JSON numbers or
//! strings, so plural selectors choose on numbers by the locale's CLDR rules. Output carries no
//! Unicode isolation marks; a missing argument is `invalid_argument` naming it. The messages the
//! game asks for, with their arguments, are declared in `messages.rs`: every locale file is held
//! to them when content loads (and by `edge content check`), and `Localize` refuses a declared
//! number sent as anything else.
//!
//! `Translate` asks only models that declare they can translate (the AI router picks among them;
//! llm refuses any other); with none in the catalog it fails, naming the setting that registers
//! one, rather than let the built-in generator answer English as if it were German.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentError, FluentResource, FluentValue};
use pbjson_types::value::Kind;
use proto::aicore::airouter::v1::{AiRouterServiceClient, RouteRequest};
use proto::aicore::language::v1::{
    LanguageServiceHandler, ListLocalesRequest, ListLocalesResponse, LocaleInfo, LocalizeRequest,
    LocalizeResponse, TranslateRequest, TranslateResponse,
};
use proto::aicore::llm::v1::{ChatMessage, InferRequest, LlmServiceClient};
use proto::aicore::models::v1::Capability;
use proto::aicore::settings::v1::{GetRequest as SettingsGetRequest, SettingsServiceClient};
use sha2::{Digest as _, Sha256};
use unic_langid::LanguageIdentifier;

mod messages;
mod numbers;
mod shipped;

pub use messages::{Arg, Declared, MESSAGES, contract_problems};

use crate::kit::calls::Caller;
use crate::kit::content::{DataError, Embedded, Source};
use crate::kit::context::Context;
use crate::kit::l10n::Texts;
use crate::kit::status::Status;
use crate::kit::store::Store;

/// The shipped locales, the default first.
pub const SHIPPED: [(&str, Embedded); 5] = [
    ("en", crate::embedded!("language/en.ftl")),
    ("de", crate::embedded!("language/de.ftl")),
    ("fr", crate::embedded!("language/fr.ftl")),
    ("pl", crate::embedded!("language/pl.ftl")),
    ("ja", crate::embedded!("language/ja.ftl")),
];
/// The shipped translations of content text (`language/content/<locale>.ftl`, see
/// [`crate::kit::l10n`]); English is the content itself.
pub const CONTENT_SHIPPED: [(&str, Embedded); 2] = [
    ("de", crate::embedded!("language/content/de.ftl")),
    ("fr", crate::embedded!("language/content/fr.ftl")),
];
const DEFAULT: &str = "en";
/// Longest text `Translate` takes, in characters.
const MAX_TRANSLATE: usize = 2000;
const MAX_ARGS: usize = 32;
/// How long a cached translation is used before the model is asked again; the janitor prunes
/// older ones, so the cache does not grow without end.
pub const TRANSLATION_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
const CACHE_PREFIX: &str = "lang.tr.";

/// A cached translation.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    text: String,
    /// When it was made (Unix ms).
    at_ms: u64,
}

fn fresh(raw: &[u8], now_ms: u64) -> Option<String> {
    let c: Cached = serde_json::from_slice(raw).ok()?;
    // A time in the future is no record of ours: treated as stale.
    (c.at_ms <= now_ms && now_ms - c.at_ms < TRANSLATION_TTL.as_millis() as u64).then_some(c.text)
}

/// Deletes cached translations past [`TRANSLATION_TTL`] (a janitor pass); how many went.
pub async fn prune_translations(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, crate::kit::store::StoreError> {
    let now = crate::kit::clock::now_ms();
    crate::kit::store::prune_prefix(store, CACHE_PREFIX, |v| fresh(v, now).is_none(), stop).await
}

/// Every locale's messages.
pub struct Locales {
    /// By locale tag, in load order (the default first).
    bundles: Vec<(String, FluentBundle<FluentResource>)>,
    /// Per locale (same order): how many of the default locale's messages it lacks (they fall
    /// back to the default).
    missing: Vec<usize>,
    /// The default locale's message ids, in file order.
    ids: Vec<String>,
    /// Content text (quests, regions, NPCs, items) in each locale, which the services that
    /// serve it read.
    texts: Arc<Texts>,
}

impl std::fmt::Debug for Locales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.bundles.iter().map(|(l, _)| l))
            .finish()
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn bundle(locale: &str, src: &Source) -> Result<FluentBundle<FluentResource>, DataError> {
    let langid: LanguageIdentifier = locale.parse().map_err(|_| DataError {
        file: src.file.clone(),
        line: 1,
        message: format!("{locale:?} is not a language tag"),
    })?;
    let resource = FluentResource::try_new(src.text.clone()).map_err(|(_, errors)| {
        let first = &errors[0];
        DataError {
            file: src.file.clone(),
            line: line_of(&src.text, first.pos.start),
            message: format!("Fluent syntax: {:?}", first.kind),
        }
    })?;
    let mut bundle = FluentBundle::new_concurrent(vec![langid]);
    bundle.set_use_isolating(false);
    bundle.set_formatter(Some(numbers::format));
    // NUMBER(), so a message can ask for a clock's "7:05" or a price's two decimals.
    bundle.add_builtins().map_err(|e| DataError {
        file: src.file.clone(),
        line: 1,
        message: format!("Fluent builtins: {e}"),
    })?;
    // CROWNS(), so a message takes money as the API gives it (minor units) and shows crowns.
    bundle
        .add_function("CROWNS", |positional, _named| {
            numbers::crowns(positional.first())
        })
        .map_err(|e| DataError {
            file: src.file.clone(),
            line: 1,
            message: format!("Fluent functions: {e}"),
        })?;
    bundle.add_resource(resource).map_err(|errors| DataError {
        file: src.file.clone(),
        line: 1,
        message: format!("{} messages defined twice", errors.len()),
    })?;
    Ok(bundle)
}

/// The message ids a resource defines, with the line of each.
fn message_ids(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (id, _) = l.split_once('=')?;
            let id = id.trim_end();
            (!id.is_empty()
                && !l.starts_with([' ', '\t', '#', '-', '*', '['])
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .then(|| (id.to_owned(), i + 1))
        })
        .collect()
}

impl Locales {
    /// The shipped locales.
    pub fn embedded() -> Result<Locales, DataError> {
        Locales::parse(
            SHIPPED
                .iter()
                .map(|(l, file)| ((*l).to_owned(), file.source()))
                .collect(),
        )
    }

    /// An operator's directory of `<locale>.ftl` files (it must hold `en.ftl`), or the shipped
    /// ones.
    pub fn load(dir: Option<&Path>) -> Result<Locales, DataError> {
        let Some(dir) = dir else {
            return Locales::embedded();
        };
        let entries = std::fs::read_dir(dir).map_err(|e| DataError {
            file: dir.display().to_string(),
            line: 1,
            message: format!("cannot read the directory: {e}"),
        })?;
        let mut sources = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("ftl")
                && let Some(locale) = path.file_stem().and_then(|s| s.to_str())
            {
                sources.push((locale.to_owned(), Source::read(&path)?));
            }
        }
        // The default first, then by name.
        sources.sort_by_key(|(l, _)| (l != DEFAULT, l.clone()));
        Locales::parse(sources)
    }

    /// Parses every file. The default locale must be there, and every message of another
    /// locale must exist in the default one too (else it could never be a fallback's twin).
    pub fn parse(sources: Vec<(String, Source)>) -> Result<Locales, DataError> {
        let Some((_, default_src)) = sources.iter().find(|(l, _)| l == DEFAULT) else {
            return Err(DataError {
                file: "language".into(),
                line: 1,
                message: format!("no {DEFAULT}.ftl (the default locale)"),
            });
        };
        let known: Vec<String> = message_ids(&default_src.text)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let mut bundles = Vec::new();
        let mut missing = Vec::new();
        for (locale, src) in &sources {
            let b = bundle(locale, src)?;
            missing.push(known.iter().filter(|id| !b.has_message(id)).count());
            for (id, line) in message_ids(&src.text) {
                if !known.contains(&id) {
                    return Err(DataError {
                        file: src.file.clone(),
                        line,
                        message: format!("message {id} is not in {DEFAULT}.ftl"),
                    });
                }
            }
            bundles.push((locale.clone(), b));
        }
        Ok(Locales {
            bundles,
            missing,
            ids: known,
            texts: Arc::default(),
        })
    }

    /// With the content's translations (checked against the content by `crate::content`).
    pub fn with_texts(mut self, texts: Texts) -> Locales {
        self.texts = Arc::new(texts);
        self
    }

    /// The content's translations.
    pub fn texts(&self) -> Arc<Texts> {
        Arc::clone(&self.texts)
    }

    /// The shipped locale to use for `requested` (e.g. `pl-PL` is `pl`), else the default.
    pub fn negotiate(&self, requested: &str) -> &str {
        let language = requested
            .parse::<LanguageIdentifier>()
            .ok()
            .map(|l| l.language.as_str().to_owned());
        self.bundles
            .iter()
            .map(|(l, _)| l.as_str())
            .find(|l| l.eq_ignore_ascii_case(requested) || language.as_deref() == Some(*l))
            .unwrap_or(DEFAULT)
    }

    /// The best loaded locale for an `Accept-Language` header (`de-CH, de;q=0.9, en;q=0.5`):
    /// the highest-weighted range a locale matches, else the default.
    pub fn from_accept_language(&self, header: &str) -> &str {
        let mut ranges: Vec<(f32, usize, &str)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && tag != "*" && q > 0.0).then_some((q, i, tag))
            })
            .collect();
        // Highest weight first; equal weights keep the header's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in ranges {
            let found = self.negotiate(tag);
            if found != DEFAULT || tag.to_ascii_lowercase().starts_with(DEFAULT) {
                return found;
            }
        }
        DEFAULT
    }

    /// `id` in `requested` (or its fallback), with `args`: the text and the locale it came
    /// from.
    pub fn localize(
        &self,
        id: &str,
        requested: &str,
        args: &FluentArgs<'_>,
    ) -> Result<(String, String), Status> {
        let first = self.negotiate(requested);
        let chain = [first, DEFAULT];
        for locale in chain {
            let Some((_, bundle)) = self.bundles.iter().find(|(l, _)| l == locale) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(args), &mut errors);
            if let Some(e) = errors.first() {
                return Err(Status::invalid_argument(match e {
                    FluentError::ResolverError(r) => format!("message {id}: {r}"),
                    other => format!("message {id}: {other}"),
                }));
            }
            return Ok((text.into_owned(), locale.to_owned()));
        }
        Err(Status::not_found(format!(
            "no message {id:?} in any locale"
        )))
    }

    /// Each locale with the number of the default's messages it lacks, the default first.
    pub fn details(&self) -> Vec<(String, usize)> {
        self.bundles
            .iter()
            .zip(&self.missing)
            .map(|((l, _), m)| (l.clone(), *m))
            .collect()
    }

    /// The locales, the default first.
    pub fn list(&self) -> Vec<String> {
        self.bundles.iter().map(|(l, _)| l.clone()).collect()
    }
}

/// Fluent arguments from JSON values: numbers stay numbers (plurals select on them), strings
/// stay strings, booleans become `true`/`false`.
fn fluent_args(
    args: &std::collections::HashMap<String, pbjson_types::Value>,
) -> Result<FluentArgs<'static>, Status> {
    if args.len() > MAX_ARGS {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_ARGS} arguments"
        )));
    }
    let mut out = FluentArgs::new();
    // Sorted, so the same call formats the same whatever the map's order.
    let sorted: BTreeMap<&String, &pbjson_types::Value> = args.iter().collect();
    for (name, v) in sorted {
        let value = match &v.kind {
            Some(Kind::NumberValue(n)) if n.is_finite() => FluentValue::from(*n),
            Some(Kind::StringValue(s)) if s.chars().count() <= 1000 => FluentValue::from(s.clone()),
            Some(Kind::BoolValue(b)) => FluentValue::from(b.to_string()),
            _ => {
                return Err(Status::invalid_argument(format!(
                    "argument {name:?} must be a number or a string (at most 1000 characters)"
                )));
            }
        };
        out.set(name.clone(), value);
    }
    Ok(out)
}

/// The service.
pub struct LanguageService {
    locales: Arc<Locales>,
    store: Arc<dyn Store>,
    router: AiRouterServiceClient<Caller>,
    llm: LlmServiceClient<Caller>,
    settings: SettingsServiceClient<Caller>,
}

impl LanguageService {
    /// The service over `locales`, translating through `caller` (the language service's) and
    /// caching translations in `store`.
    pub fn new(locales: Arc<Locales>, store: Arc<dyn Store>, caller: Caller) -> Self {
        LanguageService {
            locales,
            store,
            router: AiRouterServiceClient(caller.clone()),
            llm: LlmServiceClient(caller.clone()),
            settings: SettingsServiceClient(caller),
        }
    }
}

impl LanguageService {
    /// The language a player reads: their settings' (when they changed it from the default),
    /// else the request's `Accept-Language`, else the default. A settings service that cannot
    /// answer costs the player nothing but the fallback.
    async fn players_language(&self, ctx: &Context) -> String {
        if let Some(crate::kit::context::Principal::Player { player_id }) = &ctx.principal {
            let got = self
                .settings
                .get(
                    ctx.outgoing(),
                    SettingsGetRequest {
                        player_id: player_id.clone(),
                    },
                )
                .await;
            match got {
                // Version 0: still the defaults, which the player never chose.
                Ok(s) if s.version > 0 => {
                    if let Some(settings) = s.settings {
                        return settings.language;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "settings unreadable; the request's language decides");
                }
            }
        }
        match &ctx.accept_language {
            Some(header) => self.locales.from_accept_language(header).to_owned(),
            None => DEFAULT.to_owned(),
        }
    }
}

fn cache_key(text: &str, source: &str, target: &str, model: &str) -> String {
    let mut h = Sha256::new();
    for part in [text, source, target, model] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("{CACHE_PREFIX}{:x}", h.finalize())
}

fn language_tag(name: &str, tag: &str) -> Result<String, Status> {
    if tag.is_empty() || tag.len() > 35 {
        return Err(Status::invalid_argument(format!("{name} is required")));
    }
    tag.parse::<LanguageIdentifier>()
        .map(|l| l.to_string())
        .map_err(|_| Status::invalid_argument(format!("{name} {tag:?} is not a language tag")))
}

impl LanguageServiceHandler for LanguageService {
    type Context = Context;
    type Error = Status;

    async fn localize(
        &self,
        ctx: Context,
        req: LocalizeRequest,
    ) -> Result<LocalizeResponse, Status> {
        if req.message_id.is_empty() || req.message_id.len() > 128 {
            return Err(Status::invalid_argument("messageId is required"));
        }
        messages::check_args(&req.message_id, &req.args)?;
        let args = fluent_args(&req.args)?;
        let requested = match req.locale.as_str() {
            "" => self.players_language(&ctx).await,
            asked => asked.to_owned(),
        };
        let (text, locale) = self.locales.localize(&req.message_id, &requested, &args)?;
        Ok(LocalizeResponse {
            text,
            locale,
            message_id: req.message_id,
        })
    }

    async fn list_locales(
        &self,
        _ctx: Context,
        _req: ListLocalesRequest,
    ) -> Result<ListLocalesResponse, Status> {
        Ok(ListLocalesResponse {
            locales: self.locales.list(),
            default_locale: DEFAULT.into(),
            details: self
                .locales
                .details()
                .into_iter()
                .map(|(locale, missing)| LocaleInfo {
                    locale,
                    complete: missing == 0,
                    missing_messages: u32::try_from(missing).unwrap_or(u32::MAX),
                })
                .collect(),
        })
    }

    async fn translate(
        &self,
        ctx: Context,
        req: TranslateRequest,
    ) -> Result<TranslateResponse, Status> {
        let chars = req.text.chars().count();
        if req.text.trim().is_empty() || chars > MAX_TRANSLATE {
            return Err(Status::invalid_argument(format!(
                "text must be 1 to {MAX_TRANSLATE} characters"
            )));
        }
        let source = language_tag("sourceLocale", &req.source_locale)?;
        let target = language_tag("targetLocale", &req.target_locale)?;
        // One of the game's own messages: its translation is in the locale files.
        if let Some(text) = self
            .locales
            .shipped_translation(&req.text, &source, &target)
        {
            return Ok(TranslateResponse {
                text,
                model: String::new(),
            });
        }
        let route = self
            .router
            .route(
                ctx.outgoing(),
                // Only a model that can translate: the built-in one would answer English as German.
                // None in the catalog is the router's failed_precondition, passed on unchanged.
                RouteRequest {
                    task: "translation".into(),
                    capability: Capability::Translate as i32,
                    ..Default::default()
                },
            )
            .await?;
        let mut last = None;
        for model in std::iter::once(route.model).chain(route.fallbacks) {
            let key = cache_key(&req.text, &source, &target, &model);
            if let Some(text) = self
                .store
                .get(&key)
                .await?
                .and_then(|hit| fresh(&hit.value, crate::kit::clock::now_ms()))
            {
                return Ok(TranslateResponse { text, model });
            }
            let seed = u64::from_le_bytes(
                Sha256::digest(key.as_bytes())[..8]
                    .try_into()
                    .unwrap_or([0; 8]),
            );
            let answer = self
                .llm
                .infer(
                    ctx.outgoing(),
                    InferRequest {
                        model: model.clone(),
                        messages: vec![
                            ChatMessage {
                                role: "system".into(),
                                content: format!(
                                    "Translate the user's text from {source} to {target}. Keep names, numbers and placeholders as they are. Answer with the translation only."
                                ),
                            },
                            ChatMessage {
                                role: "user".into(),
                                content: req.text.clone(),
                            },
                        ],
                        max_tokens: u32::try_from(chars * 2 + 32).unwrap_or(4096).min(4096),
                        temperature: Some(0.0),
                        seed: Some(seed),
                        capability: Capability::Translate as i32,
                        ..Default::default()
                    },
                )
                .await;
            match answer {
                Ok(a) => {
                    let text = a.text.trim().to_owned();
                    if text.is_empty() || a.finish_reason != "stop" {
                        // Cut short or empty: answered, not kept.
                        return Ok(TranslateResponse { text, model });
                    }
                    let cached = serde_json::to_vec(&Cached {
                        text: text.clone(),
                        at_ms: crate::kit::clock::now_ms(),
                    })
                    .map_err(|e| Status::internal(e.to_string()))?;
                    if let Err(e) = self.store.put(&key, Bytes::from(cached), None).await {
                        tracing::warn!(error = %e, "translation not cached");
                    }
                    return Ok(TranslateResponse { text, model });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Status::unavailable(
                "no model could translate",
                std::time::Duration::from_secs(1),
            )
        }))
    }
}

#[cfg(test)]
mod tests;
