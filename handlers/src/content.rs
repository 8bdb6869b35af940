//! Every data file the services load, loaded together, and the checks that span files (a quest's
//! reward item is in the catalog, an arc's region exists). Sits above the services: it imports
//! their content types; nothing below imports it.

use std::path::PathBuf;

use crate::kit::canon::{Canon, Kind};
use crate::kit::content::Content as _;

mod canon_checks;

/// Operators' own data files, in place of the ones shipped in the binary (DESIGN section 3).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentPaths {
    /// The canon: the world's named things, which the other files refer to (TOML, as
    /// `handlers/data/canon.toml`) [default: shipped]. A file is checked against the canon when
    /// both are shipped or both are the operator's.
    pub canon: Option<std::path::PathBuf>,
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
pub struct GameContent {
    /// The canon.
    pub canon: Canon,
    /// The price catalog.
    pub prices: crate::services::payment::Catalog,
    /// The world's regions.
    pub regions: crate::services::world::Regions,
    /// Weather per biome.
    pub climate: crate::services::weather::Climate,
    /// NPCs, archetypes, stimuli and actions.
    pub npcs: crate::services::npc::Catalog,
    /// The device tier table.
    pub perf: crate::services::perf::Table,
    /// The quests.
    pub quests: crate::services::quest::Quests,
    /// The narrative's phrase tables.
    pub phrases: crate::services::narrative::Phrases,
    /// The locales' messages.
    pub locales: crate::services::language::Locales,
    /// The shipped lore.
    pub lore: crate::services::kb::Lore,
    /// The story arcs.
    pub arcs: crate::services::story::Arcs,
    /// The game-event routing table.
    pub game_events: crate::services::bodybroker::GameEvents,
    /// The workflows.
    pub workflows: crate::services::orchestration::Workflows,
}

impl GameContent {
    /// Loads the operator's files where given, the shipped ones otherwise. The error names the
    /// file and the line.
    pub fn load(paths: &ContentPaths) -> Result<GameContent, String> {
        let canon = Canon::load(paths.canon.as_deref()).map_err(|e| format!("canon: {e}"))?;
        // A file and the canon from the same hands are held to each other; an operator's own
        // file beside the shipped canon (or the reverse) is theirs to reconcile.
        let with_canon = |p: &Option<PathBuf>| p.is_some() == paths.canon.is_some();
        let prices = crate::services::payment::Catalog::load(paths.price_catalog.as_deref())
            .map_err(|e| format!("price catalog: {e}"))?;
        let regions = crate::services::world::Regions::load(paths.regions.as_deref())
            .map_err(|e| format!("regions: {e}"))?;
        if with_canon(&paths.regions) {
            regions
                .check_canon(|id| {
                    canon
                        .get(id)
                        .filter(|e| e.kind == Kind::Region)
                        .map(|e| e.name.clone())
                })
                .map_err(|e| format!("regions: {e}"))?;
        }
        if with_canon(&paths.price_catalog) {
            prices
                .check_canon(|id| canon.is(id, Kind::Item))
                .map_err(|e| format!("price catalog: {e}"))?;
        }
        let quests = crate::services::quest::Quests::load(paths.quests.as_deref())
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
        let game_events =
            crate::services::bodybroker::GameEvents::load(paths.game_events.as_deref())
                .map_err(|e| format!("game events: {e}"))?;
        let npcs = crate::services::npc::Catalog::load(paths.npcs.as_deref())
            .map_err(|e| format!("npcs: {e}"))?;
        quests
            .check_events(
                |event| game_events.advances_quests(event),
                |npc| npcs.npcs.contains_key(npc),
            )
            .map_err(|e| format!("quests: {e}"))?;
        if with_canon(&paths.npcs) {
            canon_checks::check_npcs(&npcs, &canon).map_err(|e| format!("npcs: {e}"))?;
        }
        if with_canon(&paths.quests) {
            quests
                .check_canon(
                    |r| canon.is(r, Kind::Region),
                    |giver| {
                        canon
                            .person_named(giver)
                            .is_some_and(|p| npcs.npcs.values().any(|n| n.canon == p.id))
                    },
                )
                .map_err(|e| format!("quests: {e}"))?;
        }
        let workflows = crate::services::orchestration::Workflows::load(paths.workflows.as_deref())
            .map_err(|e| format!("workflows: {e}"))?;
        workflows
            .check_refs(|q| quests.get(q).is_some(), |sku| prices.get(sku).is_some())
            .map_err(|e| format!("workflows: {e}"))?;
        let phrases = crate::services::narrative::Phrases::load(paths.narrative.as_deref())
            .map_err(|e| format!("narrative: {e}"))?;
        phrases
            .check_world(
                regions
                    .list
                    .iter()
                    .map(|r| (r.region.id.as_str(), r.region.biome.as_str())),
            )
            .map_err(|e| format!("narrative: {e}"))?;
        let locales = crate::services::language::Locales::load(paths.language.as_deref())
            .map_err(|e| format!("language: {e}"))?;
        let lore = crate::services::kb::Lore::load(paths.lore.as_deref())
            .map_err(|e| format!("lore: {e}"))?;
        if with_canon(&paths.lore) {
            lore.check_canon(|id| canon.get(id).is_some())
                .map_err(|e| format!("lore: {e}"))?;
        }
        let arcs = crate::services::story::Arcs::load(paths.story.as_deref())
            .map_err(|e| format!("story: {e}"))?;
        arcs.check_refs(|q| quests.get(q).is_some(), |r| regions.get(r).is_some())
            .map_err(|e| format!("story: {e}"))?;
        if with_canon(&paths.story) {
            arcs.check_canon(|r| canon.is(r, Kind::Region), |id| canon.get(id).is_some())
                .map_err(|e| format!("story: {e}"))?;
        }
        npcs.check_refs(
            |r| regions.get(r).map(|r| (r.min, r.max)),
            |doc| lore.documents.iter().any(|d| d.id == doc),
        )
        .map_err(|e| format!("npcs: {e}"))?;
        let regions_of_biome = |biome: &str| -> Vec<String> {
            regions
                .list
                .iter()
                .filter(|r| r.region.biome == biome)
                .map(|r| r.canon.clone())
                .collect()
        };
        for src in canon_checks::prose(paths).map_err(|e| format!("canon: {e}"))? {
            canon
                .check_prose(&src, &regions_of_biome)
                .map_err(|e| format!("canon: {e}"))?;
        }
        Ok(GameContent {
            canon,
            npcs,
            prices,
            regions,
            quests,
            phrases,
            locales,
            lore,
            arcs,
            game_events,
            workflows,
            climate: crate::services::weather::Climate::load(paths.weather.as_deref())
                .map_err(|e| format!("weather: {e}"))?,
            perf: crate::services::perf::Table::load(paths.perf.as_deref())
                .map_err(|e| format!("perf: {e}"))?,
        })
    }
}

#[cfg(test)]
mod canon_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_data_file_loads() {
        let content = GameContent::load(&ContentPaths::default()).unwrap();
        assert!(content.regions.list.len() >= 8);
        assert!(!content.npcs.actions.is_empty());
        let bad = ContentPaths {
            weather: Some("/nonexistent/biomes.toml".into()),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&bad).unwrap_err();
        assert!(
            err.starts_with("weather: /nonexistent/biomes.toml:1:"),
            "{err}"
        );
    }

    /// A game needs no code of its own to finish a shipped quest: every objective is moved by an
    /// event the game server sends (or, for talked_to, one the backend reports), none by Progress.
    #[test]
    fn every_shipped_objective_is_moved_by_an_event() {
        let content = GameContent::load(&ContentPaths::default()).unwrap();
        for q in &content.quests.list {
            for o in &q.definition.objectives {
                let (event, target) = o.on.split_once(':').unwrap_or(("", ""));
                assert!(
                    !target.is_empty()
                        && (content.game_events.advances_quests(event)
                            || event == crate::services::quest::TALKED_TO),
                    "quest {} objective {} is moved by no event",
                    q.definition.id,
                    o.id
                );
            }
        }
    }

    #[test]
    fn an_objective_with_no_event_must_say_it_is_scripted() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = include_str!("../data/quest/quests.toml");
        let bad = shipped.replacen("on = \"object_interacted:mill-road-lantern\"\n", "", 1);
        assert_ne!(bad, shipped);
        let path = dir.path().join("quests.toml");
        std::fs::write(&path, &bad).unwrap();
        let paths = ContentPaths {
            quests: Some(path.clone()),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        assert!(
            err.contains("quests.toml:") && err.contains("scripted = true"),
            "{err}"
        );
        std::fs::write(
            &path,
            shipped.replacen(
                "on = \"object_interacted:mill-road-lantern\"\n",
                "scripted = true\n",
                1,
            ),
        )
        .unwrap();
        GameContent::load(&paths).unwrap();
        std::fs::write(
            &path,
            shipped.replacen("talked_to:hob-reed", "talked_to:the-miller", 1),
        )
        .unwrap();
        let err = GameContent::load(&paths).unwrap_err();
        assert!(err.contains("\"the-miller\" is not an NPC id"), "{err}");
    }
}
