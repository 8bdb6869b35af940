//! Content that designers edit ships as data files under `handlers/data/<svc>/`, embedded at
//! build time; an operator may point a service at their own file instead. Whatever the source,
//! a file is validated when loaded, and every error names the file and the line.

use std::ops::Range;
use std::path::Path;

/// A data file that does not load: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DataError {
    /// The file's name (the embedded path, or the operator's path).
    pub file: String,
    /// 1-based line of the problem (1 when the whole file is at fault).
    pub line: usize,
    /// What is wrong, said for the person editing the file.
    pub message: String,
}

/// One data file's text and name.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name in errors.
    pub file: String,
    /// Its text.
    pub text: String,
}

impl Source {
    /// An embedded file.
    pub fn embedded(file: &str, text: &str) -> Self {
        Source {
            file: file.to_owned(),
            text: text.to_owned(),
        }
    }

    /// An operator's file from disk.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError {
            file: path.display().to_string(),
            line: 1,
            message: format!("cannot read: {e}"),
        })?;
        Ok(Source {
            file: path.display().to_string(),
            text,
        })
    }

    /// Parses the text as TOML into `T`; a syntax or type error names its line.
    pub fn toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, DataError> {
        toml::from_str(&self.text)
            .map_err(|e| self.error(e.span(), e.message().trim_end_matches('\n').to_owned()))
    }

    /// An error at `span` (a byte range of the text).
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> DataError {
        let line = span.map_or(1, |s| {
            let end = s.start.min(self.text.len());
            self.text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        DataError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

/// The operator's file at `path` if given, else the shipped one (`name`, `text`).
pub fn source(path: Option<&Path>, name: &str, text: &str) -> Result<Source, DataError> {
    match path {
        Some(p) => Source::read(p),
        None => Ok(Source::embedded(name, text)),
    }
}

/// Whether `id` is a content id: 1 to `max` lowercase ASCII letters, digits or '-' (quests, arcs,
/// beats, choices, lore documents and their tags).
pub fn valid_slug(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// FNV-1a over `parts` (each closed by 0xff): a seed that is the same on every machine and
/// build, for content chosen deterministically from its inputs.
pub fn seed(parts: &[&str]) -> u64 {
    parts.iter().fold(0xcbf2_9ce4_8422_2325_u64, |mut h, p| {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    })
}

/// Operators' own data files, in place of the ones shipped in the binary (DESIGN section 3).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentPaths {
    /// The price catalog (TOML, as `handlers/data/payment/catalog.toml`) [default: shipped].
    pub price_catalog: Option<std::path::PathBuf>,
    /// The world's regions (TOML, as `handlers/data/world/regions.toml`) [default: shipped].
    pub regions: Option<std::path::PathBuf>,
    /// A directory with `npcs.toml` and `actions.toml` (as `handlers/data/npc/`) [default:
    /// shipped].
    pub npcs: Option<std::path::PathBuf>,
    /// The device tier table (TOML, as `handlers/data/perf/tiers.toml`) [default: shipped].
    pub perf: Option<std::path::PathBuf>,
    /// Weather chains and climates per biome (TOML, as `handlers/data/weather/biomes.toml`)
    /// [default: shipped].
    pub weather: Option<std::path::PathBuf>,
    /// The quests (TOML, as `handlers/data/quest/quests.toml`) [default: shipped].
    pub quests: Option<std::path::PathBuf>,
    /// The narrative's phrase tables (TOML, as `handlers/data/narrative/phrases.toml`)
    /// [default: shipped].
    pub narrative: Option<std::path::PathBuf>,
    /// A directory of `<locale>.ftl` files, with `en.ftl` (as `handlers/data/language/`)
    /// [default: shipped].
    pub language: Option<std::path::PathBuf>,
    /// The lore written to an empty store (TOML, as `handlers/data/kb/lore.toml`) [default:
    /// shipped].
    pub lore: Option<std::path::PathBuf>,
    /// The story arcs (TOML, as `handlers/data/story/arcs.toml`) [default: shipped].
    pub story: Option<std::path::PathBuf>,
    /// The game-event routing table (TOML, as `handlers/data/bodybroker/events.toml`)
    /// [default: shipped].
    pub game_events: Option<std::path::PathBuf>,
    /// The workflows (TOML, as `handlers/data/orchestration/workflows.toml`) [default: shipped].
    pub workflows: Option<std::path::PathBuf>,
}

/// Every data file the services load, loaded and validated.
#[derive(Debug)]
pub struct Content {
    /// The price catalog.
    pub prices: crate::payment::Catalog,
    /// The world's regions.
    pub regions: crate::world::Regions,
    /// Weather per biome.
    pub climate: crate::weather::Climate,
    /// NPCs, archetypes, stimuli and actions.
    pub npcs: crate::npc::Catalog,
    /// The device tier table.
    pub perf: crate::perf::Table,
    /// The quests.
    pub quests: crate::quest::Quests,
    /// The narrative's phrase tables.
    pub phrases: crate::narrative::Phrases,
    /// The locales' messages.
    pub locales: crate::language::Locales,
    /// The shipped lore.
    pub lore: crate::kb::Lore,
    /// The story arcs.
    pub arcs: crate::story::Arcs,
    /// The game-event routing table.
    pub game_events: crate::bodybroker::GameEvents,
    /// The workflows.
    pub workflows: crate::orchestration::Workflows,
}

impl Content {
    /// Loads the operator's files where given, the shipped ones otherwise. The error names the
    /// file and the line.
    pub fn load(paths: &ContentPaths) -> Result<Content, String> {
        let prices = crate::payment::Catalog::load(paths.price_catalog.as_deref())
            .map_err(|e| format!("price catalog: {e}"))?;
        let regions = crate::world::Regions::load(paths.regions.as_deref())
            .map_err(|e| format!("regions: {e}"))?;
        let quests = crate::quest::Quests::load(paths.quests.as_deref())
            .map_err(|e| format!("quests: {e}"))?;
        // Reward items are checked against the catalog when both come from the same hands: an
        // operator's own catalog beside the shipped quests is theirs to reconcile.
        let check_items = paths.price_catalog.is_none() || paths.quests.is_some();
        quests
            .check_refs(
                |sku| !check_items || prices.get(sku).is_some(),
                |r| regions.get(r).is_some(),
            )
            .map_err(|e| format!("quests: {e}"))?;
        let game_events = crate::bodybroker::GameEvents::load(paths.game_events.as_deref())
            .map_err(|e| format!("game events: {e}"))?;
        quests
            .check_events(|event| game_events.advances_quests(event))
            .map_err(|e| format!("quests: {e}"))?;
        let workflows = crate::orchestration::Workflows::load(paths.workflows.as_deref())
            .map_err(|e| format!("workflows: {e}"))?;
        let phrases = crate::narrative::Phrases::load(paths.narrative.as_deref())
            .map_err(|e| format!("narrative: {e}"))?;
        phrases
            .check_biomes(regions.list.iter().map(|r| r.region.biome.as_str()))
            .map_err(|e| format!("narrative: {e}"))?;
        let locales = crate::language::Locales::load(paths.language.as_deref())
            .map_err(|e| format!("language: {e}"))?;
        let lore =
            crate::kb::Lore::load(paths.lore.as_deref()).map_err(|e| format!("lore: {e}"))?;
        let arcs =
            crate::story::Arcs::load(paths.story.as_deref()).map_err(|e| format!("story: {e}"))?;
        arcs.check_refs(|q| quests.get(q).is_some(), |r| regions.get(r).is_some())
            .map_err(|e| format!("story: {e}"))?;
        Ok(Content {
            prices,
            regions,
            quests,
            phrases,
            locales,
            lore,
            arcs,
            game_events,
            workflows,
            climate: crate::weather::Climate::load(paths.weather.as_deref())
                .map_err(|e| format!("weather: {e}"))?,
            npcs: crate::npc::Catalog::load(paths.npcs.as_deref())
                .map_err(|e| format!("npcs: {e}"))?,
            perf: crate::perf::Table::load(paths.perf.as_deref())
                .map_err(|e| format!("perf: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        n: u32,
    }

    #[test]
    fn every_shipped_data_file_loads() {
        let content = Content::load(&ContentPaths::default()).unwrap();
        assert!(content.regions.list.len() >= 8);
        assert!(!content.npcs.actions.is_empty());
        let bad = ContentPaths {
            weather: Some("/nonexistent/biomes.toml".into()),
            ..ContentPaths::default()
        };
        let err = Content::load(&bad).unwrap_err();
        assert!(
            err.starts_with("weather: /nonexistent/biomes.toml:1:"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let src = Source::embedded("x.toml", "# a comment\n\nn = \"three\"\n");
        let e = src.toml::<Doc>().unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("x.toml", 3), "{e}");
        assert!(e.to_string().starts_with("x.toml:3: "), "{e}");
        let e = Source::embedded("y.toml", "n = 1\nn = 2\n")
            .toml::<Doc>()
            .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let missing = Source::read(Path::new("/nonexistent/catalog.toml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("/nonexistent/catalog.toml:1: cannot read")
        );
    }
}
