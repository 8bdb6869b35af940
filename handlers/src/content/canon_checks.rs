//! The checks of content against the canon that need more than one service's types: NPCs are
//! people of the canon, and the prose of every file from the canon's hands.

use std::path::{Path, PathBuf};

use super::ContentPaths;
use crate::kit::canon::{Canon, Kind};
use crate::kit::content::{DataError, Embedded, Source};

/// Every NPC is a person of the canon, under the canon's name and in the canon's region.
pub(super) fn check_npcs(
    npcs: &crate::services::npc::Catalog,
    canon: &Canon,
) -> Result<(), DataError> {
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
pub(super) fn prose(paths: &ContentPaths) -> Result<Vec<Source>, DataError> {
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
