//! The checks of content against the canon that need more than one service's types: NPCs are
//! people of the canon. (The prose of every file from the canon's hands is the texts
//! `pack::Files` loaded, held to the canon in `GameContent::load`.)

use crate::kit::canon::{Canon, Kind};
use crate::kit::content::DataError;

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
