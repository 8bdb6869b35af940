//! `aicore.settings.v1.SettingsService`: a player's validated, versioned settings document.
//! Stored at `settings.<playerId>` as protobuf; version 0 means "still the defaults".
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::settings::v1::{
    Difficulty, GetRequest, GetResponse, GraphicsQuality, ResetRequest, ResetResponse, Settings,
    SettingsPatch, SettingsServiceHandler, UpdateRequest, UpdateResponse,
};

use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

const MAX_BINDINGS: usize = 128;

/// The defaults every player starts with.
pub fn defaults() -> Settings {
    Settings {
        master_volume: 80,
        music_volume: 70,
        sfx_volume: 80,
        voice_volume: 80,
        mouse_sensitivity: 1.0,
        invert_y: false,
        field_of_view: 90,
        language: "en-US".into(),
        subtitles: true,
        difficulty: Difficulty::Normal as i32,
        graphics_quality: GraphicsQuality::Medium as i32,
        frame_rate_limit: 0,
        key_bindings: Default::default(),
    }
}

/// Whether `tag` (a BCP 47 tag such as `de-DE`, or a bare `de`) names one of the `offered`
/// languages (the locales loaded, by language subtag).
fn offered_language(tag: &str, offered: &[String]) -> bool {
    let valid = !tag.is_empty()
        && tag.len() <= 35
        && tag
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    let language = tag.split('-').next().unwrap_or_default();
    valid && offered.iter().any(|o| o.eq_ignore_ascii_case(language))
}

/// Every rule a settings document breaks, so a client can fix them all at once. `offered`: the
/// languages the game has text in.
pub fn validate(s: &Settings, offered: &[String]) -> Result<(), Status> {
    let mut errors = Vec::new();
    for (name, v) in [
        ("masterVolume", s.master_volume),
        ("musicVolume", s.music_volume),
        ("sfxVolume", s.sfx_volume),
        ("voiceVolume", s.voice_volume),
    ] {
        if v > 100 {
            errors.push(format!("{name} must be 0 to 100, got {v}"));
        }
    }
    if !(s.mouse_sensitivity.is_finite() && (0.1..=10.0).contains(&s.mouse_sensitivity)) {
        errors.push(format!(
            "mouseSensitivity must be 0.1 to 10, got {}",
            s.mouse_sensitivity
        ));
    }
    if !(60..=120).contains(&s.field_of_view) {
        errors.push(format!(
            "fieldOfView must be 60 to 120, got {}",
            s.field_of_view
        ));
    }
    if !offered_language(&s.language, offered) {
        errors.push(format!(
            "language must be a language tag of one of the game's languages ({}), such as \"{}-XX\" or \"{}\"",
            offered.join(", "),
            offered.first().map_or("en", String::as_str),
            offered.first().map_or("en", String::as_str),
        ));
    }
    match Difficulty::try_from(s.difficulty) {
        Ok(Difficulty::Unspecified) | Err(_) => {
            errors.push("difficulty must be DIFFICULTY_STORY, _NORMAL, _HARD or _NIGHTMARE".into())
        }
        Ok(_) => {}
    }
    match GraphicsQuality::try_from(s.graphics_quality) {
        Ok(GraphicsQuality::Unspecified) | Err(_) => errors
            .push("graphicsQuality must be GRAPHICS_QUALITY_LOW, _MEDIUM, _HIGH or _ULTRA".into()),
        Ok(_) => {}
    }
    if s.frame_rate_limit != 0 && !(30..=360).contains(&s.frame_rate_limit) {
        errors.push(format!(
            "frameRateLimit must be 0 or 30 to 360, got {}",
            s.frame_rate_limit
        ));
    }
    if s.key_bindings.len() > MAX_BINDINGS {
        errors.push(format!("at most {MAX_BINDINGS} keyBindings"));
    }
    let name_ok = |n: &str, max: usize| {
        !n.is_empty()
            && n.len() <= max
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    };
    for (action, key) in &s.key_bindings {
        if !name_ok(action, 64) || !name_ok(key, 32) {
            errors.push(format!(
                "keyBindings entry {action:?} -> {key:?}: names are 1-64 (action) / 1-32 (key) characters of letters, digits, '_', '-', '.', '+'"
            ));
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(errors.join("; ")))
    }
}

fn apply(mut s: Settings, p: SettingsPatch) -> Settings {
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = p.$f { s.$f = v; })* };
    }
    set!(
        master_volume,
        music_volume,
        sfx_volume,
        voice_volume,
        mouse_sensitivity,
        invert_y,
        field_of_view,
        language,
        subtitles,
        difficulty,
        graphics_quality,
        frame_rate_limit
    );
    for (action, key) in p.key_bindings {
        if key.is_empty() {
            s.key_bindings.remove(&action);
        } else {
            s.key_bindings.insert(action, key);
        }
    }
    s
}

/// The settings service.
#[derive(Clone)]
pub struct SettingsService {
    store: Arc<dyn Store>,
    languages: Vec<String>,
}

impl std::fmt::Debug for SettingsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsService")
    }
}

impl SettingsService {
    /// A settings service over `store`, offering `languages` (the loaded locales).
    pub fn new(store: Arc<dyn Store>, languages: Vec<String>) -> Self {
        SettingsService { store, languages }
    }

    async fn load(&self, player: &str) -> Result<(Settings, u64), Status> {
        match self.store.get(&format!("settings.{player}")).await? {
            Some(v) => Ok((
                Settings::decode(v.value.as_ref()).map_err(Status::internal)?,
                v.version,
            )),
            None => Ok((defaults(), 0)),
        }
    }

    async fn save(&self, player: &str, s: &Settings, expected: Option<u64>) -> Result<u64, Status> {
        match self
            .store
            .put(
                &format!("settings.{player}"),
                Bytes::from(s.encode_to_vec()),
                expected,
            )
            .await
        {
            Ok(v) => Ok(v),
            Err(StoreError::Conflict { current }) => Err(Status::aborted(format!(
                "settings changed: expected version {}, current version is {}",
                expected.unwrap_or(0),
                current.unwrap_or(0)
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

impl SettingsServiceHandler for SettingsService {
    type Context = Context;
    type Error = Status;

    async fn get(&self, ctx: Context, req: GetRequest) -> Result<GetResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let (settings, version) = self.load(&player).await?;
        Ok(GetResponse {
            settings: Some(settings),
            version,
            languages: self.languages.clone(),
        })
    }

    async fn update(&self, ctx: Context, req: UpdateRequest) -> Result<UpdateResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let patch = req
            .patch
            .ok_or_else(|| Status::invalid_argument("patch is required"))?;
        let (current, version) = self.load(&player).await?;
        if let Some(expected) = req.expected_version
            && expected != version
        {
            return Err(Status::aborted(format!(
                "settings changed: expected version {expected}, current version is {version}"
            )));
        }
        let updated = apply(current, patch);
        validate(&updated, &self.languages)?;
        // Always compare-and-set against what was read, so concurrent updates never interleave.
        let version = self.save(&player, &updated, Some(version)).await?;
        Ok(UpdateResponse {
            settings: Some(updated),
            version,
        })
    }

    async fn reset(&self, ctx: Context, req: ResetRequest) -> Result<ResetResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let settings = defaults();
        let version = self.save(&player, &settings, req.expected_version).await?;
        Ok(ResetResponse {
            settings: Some(settings),
            version,
        })
    }
}

#[cfg(test)]
mod tests;
