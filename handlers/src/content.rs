//! Every data file the services load, loaded together, and the checks that span files (a quest's
//! reward item is in the catalog, an arc's region exists). Sits above the services: it imports
//! their content types; nothing below imports it.

use std::path::{Path, PathBuf};

use crate::kit::canon::{Canon, Kind};
use crate::kit::content::{Content as _, DataError, Embedded, Source};

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
            check_npcs(&npcs, &canon).map_err(|e| format!("npcs: {e}"))?;
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
            .check_biomes(regions.list.iter().map(|r| r.region.biome.as_str()))
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
        for src in prose(paths).map_err(|e| format!("canon: {e}"))? {
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

/// Every NPC is a person of the canon, under the canon's name and in the canon's region.
fn check_npcs(npcs: &crate::services::npc::Catalog, canon: &Canon) -> Result<(), DataError> {
    let mut list: Vec<_> = npcs.npcs.values().collect();
    list.sort_by_key(|n| n.line);
    for n in list {
        let message = match canon.get(&n.canon).filter(|p| p.kind == Kind::Person) {
            None => format!(
                "npc {}: {:?} is not a person of the canon (handlers/data/canon.toml)",
                n.id, n.canon
            ),
            Some(p) if p.name != n.name => format!(
                "npc {}: named {:?}, but the canon names {} {:?}",
                n.id, n.name, p.id, p.name
            ),
            Some(p) if p.region.as_deref() != Some(n.region.as_str()) => format!(
                "npc {}: stands in {}, but the canon has {} in {}",
                n.id,
                n.region,
                p.id,
                p.region.as_deref().unwrap_or("no region")
            ),
            Some(_) => continue,
        };
        return Err(DataError {
            file: npcs.file.clone(),
            line: n.line,
            message,
        });
    }
    Ok(())
}

/// The files whose prose is held to the canon's known-wrong names: those from the same hands as
/// the canon (all shipped, or all the operator's).
fn prose(paths: &ContentPaths) -> Result<Vec<Source>, DataError> {
    let own = paths.canon.is_some();
    let files: [(&Option<PathBuf>, Embedded); 10] = [
        (
            &paths.price_catalog,
            crate::embedded!("payment/catalog.toml"),
        ),
        (&paths.regions, crate::embedded!("world/regions.toml")),
        (&paths.quests, crate::embedded!("quest/quests.toml")),
        (&paths.narrative, crate::embedded!("narrative/phrases.toml")),
        (&paths.lore, crate::embedded!("kb/lore.toml")),
        (&paths.story, crate::embedded!("story/arcs.toml")),
        (
            &paths.game_events,
            crate::embedded!("bodybroker/events.toml"),
        ),
        (
            &paths.workflows,
            crate::embedded!("orchestration/workflows.toml"),
        ),
        (&paths.weather, crate::embedded!("weather/biomes.toml")),
        (&paths.perf, crate::embedded!("perf/tiers.toml")),
    ];
    let mut out = Vec::new();
    for (path, shipped) in files {
        match (path, own) {
            (None, false) => out.push(shipped.source()),
            (Some(p), true) => out.push(Source::read(p)?),
            _ => {}
        }
    }
    match (&paths.npcs, own) {
        (None, false) => out.extend(
            [
                crate::embedded!("npc/npcs.toml"),
                crate::embedded!("npc/actions.toml"),
            ]
            .map(|e| e.source()),
        ),
        (Some(dir), true) => {
            out.push(Source::read(&dir.join("npcs.toml"))?);
            out.push(Source::read(&dir.join("actions.toml"))?);
        }
        _ => {}
    }
    match (&paths.language, own) {
        (None, false) => out.extend(
            [
                crate::embedded!("language/en.ftl"),
                crate::embedded!("language/de.ftl"),
                crate::embedded!("language/fr.ftl"),
                crate::embedded!("language/pl.ftl"),
                crate::embedded!("language/ja.ftl"),
            ]
            .map(|e| e.source()),
        ),
        (Some(dir), true) => out.extend(ftl_files(dir)?),
        _ => {}
    }
    Ok(out)
}

/// The `.ftl` files of an operator's language directory, by name.
fn ftl_files(dir: &Path) -> Result<Vec<Source>, DataError> {
    let unreadable = |e: std::io::Error| DataError {
        file: dir.display().to_string(),
        line: 1,
        message: format!("cannot read: {e}"),
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
        .collect();
    names.sort();
    names.iter().map(|p| Source::read(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator's canon (the shipped one, edited) and one other file of theirs, in `dir`.
    fn pack(dir: &Path, edit_canon: impl Fn(&str) -> String, file: &str, text: &str) -> PathBuf {
        std::fs::write(dir.join("canon.toml"), edit_canon(Canon::SHIPPED.text)).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
        dir.join(file)
    }

    /// The 1-based line of the table whose first key line contains `needle`.
    fn table_line(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap()
    }

    #[test]
    fn a_reference_the_canon_lacks_is_refused_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let canon = Some(dir.path().join("canon.toml"));
        let same = |s: &str| s.to_owned();
        // An NPC who is no person of the canon.
        let npcs = crate::embedded!("npc/npcs.toml").text;
        pack(
            dir.path(),
            |c| c.replace("id = \"orla-saltash\"", "id = \"orla\""),
            "npcs.toml",
            npcs,
        );
        std::fs::write(
            dir.path().join("actions.toml"),
            crate::embedded!("npc/actions.toml").text,
        )
        .unwrap();
        let paths = ContentPaths {
            canon: canon.clone(),
            npcs: Some(dir.path().to_owned()),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        let line = table_line(npcs, "id = \"orla-saltash\"");
        assert!(
            err.contains(&format!(
                "npcs.toml:{line}: npc orla-saltash: \"orla-saltash\" is not a person of the canon"
            )),
            "{err}"
        );
        // A lore document about something the canon lacks.
        let lore = crate::embedded!("kb/lore.toml").text;
        let bad = lore.replacen(
            "about = [\"abbey-of-saint-wren\"",
            "about = [\"greywood\"",
            1,
        );
        let path = pack(dir.path(), same, "lore.toml", &bad);
        let paths = ContentPaths {
            canon: canon.clone(),
            lore: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        let line = table_line(lore, "id = \"the-drowned-abbey\"");
        assert!(
            err.contains(&format!(
                "lore.toml:{line}: document the-drowned-abbey: about \"greywood\""
            )),
            "{err}"
        );
        // A beat about someone from another world.
        let arcs = crate::embedded!("story/arcs.toml").text;
        let bad = arcs.replacen("about = [\"orla-saltash\"", "about = [\"odo-marrable\"", 1);
        let path = pack(dir.path(), same, "arcs.toml", &bad);
        let paths = ContentPaths {
            canon: canon.clone(),
            story: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        let line = table_line(arcs, "id = \"the-harbourmasters-seal\"");
        assert!(err.contains(&format!("arcs.toml:{line}: arc the-breakwater-run: beat the-harbourmasters-seal: about \"odo-marrable\"")), "{err}");
        // A quest giver the canon knows but who has no NPC, and one it does not know at all.
        let quests = crate::embedded!("quest/quests.toml").text;
        let line = table_line(quests, "id = \"lanterns-on-the-mill-road\"");
        for giver in ["Queen Ysolde", "Iselde Marr"] {
            let bad = quests.replacen(
                "giver = \"Brenna Hale\"",
                &format!("giver = \"{giver}\""),
                1,
            );
            let path = pack(dir.path(), same, "quests.toml", &bad);
            let paths = ContentPaths {
                canon: canon.clone(),
                quests: Some(path),
                ..ContentPaths::default()
            };
            let err = GameContent::load(&paths).unwrap_err();
            assert!(err.contains(&format!("quests.toml:{line}: quest lanterns-on-the-mill-road: giver \"{giver}\" is not the name of a canon person with an NPC")), "{err}");
            // The same quests beside the shipped canon are the operator's to reconcile.
            let mixed = ContentPaths {
                quests: paths.quests.clone(),
                ..ContentPaths::default()
            };
            GameContent::load(&mixed).unwrap();
        }
        // A catalog item that is neither a canon item nor says it is a service.
        let catalog = crate::embedded!("payment/catalog.toml").text;
        let line = table_line(catalog, "sku = \"stash_expansion\"");
        for (from, to, says) in [
            (
                "catalog_only = true\n",
                "",
                "stash_expansion: say which canon item it is",
            ),
            (
                "catalog_only = true\n",
                "canon = \"guildhall-chest\"\n",
                "stash_expansion: canon \"guildhall-chest\" is not an item of the canon",
            ),
        ] {
            let path = pack(
                dir.path(),
                same,
                "catalog.toml",
                &catalog.replacen(from, to, 1),
            );
            let paths = ContentPaths {
                canon: canon.clone(),
                price_catalog: Some(path),
                ..ContentPaths::default()
            };
            let err = GameContent::load(&paths).unwrap_err();
            assert!(
                err.contains(&format!("catalog.toml:{line}: {says}")),
                "{err}"
            );
        }
        // A region under another name than the canon's.
        let regions = crate::embedded!("world/regions.toml").text;
        let path = pack(
            dir.path(),
            same,
            "regions.toml",
            &regions.replacen("\"Ashfen Marsh\"", "\"Ashfen Mire\"", 1),
        );
        let paths = ContentPaths {
            canon: canon.clone(),
            regions: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        assert!(
            err.contains(
                "region ashfen: named \"Ashfen Mire\", but the canon names it \"Ashfen Marsh\""
            ),
            "{err}"
        );
        // Prose naming a place of another world, by its line.
        let bad = quests.replacen(
            "the Tarrow windmill",
            "the Tarrow windmill past Highmoor",
            1,
        );
        let path = pack(dir.path(), same, "quests.toml", &bad);
        let paths = ContentPaths {
            canon: canon.clone(),
            quests: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err();
        let line = table_line(quests, "the Tarrow windmill") + 1;
        assert!(
            err.starts_with("canon: ")
                && err.contains(&format!(
                    "quests.toml:{line}: \"Highmoor\" is not of this world"
                )),
            "{err}"
        );
    }

    #[test]
    fn a_workflow_names_only_real_quests_and_items() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = crate::embedded!("orchestration/workflows.toml").text;
        let path = dir.path().join("workflows.toml");
        for (template, literal, says) in [
            (
                "sku = \"{{input.sku}}\"",
                "sku = \"no_such_thing\"",
                "names item \"no_such_thing\", which is not in the price catalog",
            ),
            (
                "questId = \"{{input.quest}}\"",
                "questId = \"no-such-quest\"",
                "names quest \"no-such-quest\", which does not exist",
            ),
        ] {
            let bad = shipped.replacen(template, literal, 1);
            std::fs::write(&path, bad).unwrap();
            let paths = ContentPaths {
                workflows: Some(path.clone()),
                ..ContentPaths::default()
            };
            let err = GameContent::load(&paths).unwrap_err();
            assert!(
                err.starts_with("workflows: ") && err.contains(says),
                "{err}"
            );
        }
        let fine = shipped.replacen("sku = \"{{input.sku}}\"", "sku = \"lantern_oil\"", 1);
        std::fs::write(&path, fine).unwrap();
        GameContent::load(&ContentPaths {
            workflows: Some(path),
            ..ContentPaths::default()
        })
        .unwrap();
    }

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
