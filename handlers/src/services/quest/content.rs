//! The quests, from `handlers/data/quest/quests.toml` (or an operator's file), validated with
//! errors that name the file and line: ids, texts, objectives, rewards, levels, and a
//! prerequisite graph with no unknown quest and no cycle.

use std::collections::{BTreeMap, HashMap};

use proto::aicore::quest::v1::{Objective, QuestDefinition, Reward};
use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source, valid_slug};

const MAX_OBJECTIVES: usize = 8;
const MAX_TARGET: u32 = 1000;
const MAX_CURRENCY: i64 = 10_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    levels: Spanned<Vec<u64>>,
    quest: Vec<Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    title: String,
    description: String,
    chain: String,
    region: String,
    giver: String,
    min_level: u32,
    #[serde(default)]
    prerequisites: Vec<String>,
    reward: RewardEntry,
    objective: Vec<ObjectiveEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardEntry {
    currency: i64,
    #[serde(default)]
    items: Vec<String>,
    experience: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveEntry {
    id: String,
    description: String,
    target: u32,
    #[serde(default)]
    on: String,
    #[serde(default)]
    scripted: bool,
}

pub use crate::kit::content::TALKED_TO;

/// One quest as the service uses it.
#[derive(Debug, Clone)]
pub struct QuestDef {
    /// As clients see it.
    pub definition: QuestDefinition,
    /// The chain it belongs to.
    pub chain: String,
    /// Where it takes place (a region id).
    pub region: String,
    /// Who gives it.
    pub giver: String,
    /// Its line in the file, for errors found later (unknown items or regions).
    line: usize,
}

/// Every quest, in file order, and the experience table.
#[derive(Debug, Clone)]
pub struct Quests {
    /// The quests.
    pub list: Vec<QuestDef>,
    by_id: HashMap<String, usize>,
    /// Experience needed for level 1, 2, ... (the first is 0).
    pub levels: Vec<u64>,
    file: String,
}

/// Printable text: no control, direction or zero-width characters (the payment ledger refuses
/// them in a credit's reason, which holds the title).
fn text(s: &str, max: usize) -> bool {
    !s.trim().is_empty()
        && s.chars().count() <= max
        && !s.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
}

impl Quests {
    fn error_at(&self, q: &QuestDef, message: String) -> DataError {
        DataError {
            file: self.file.clone(),
            line: q.line,
            message,
        }
    }

    /// Every prerequisite names a quest, and following them never comes back.
    fn check_prerequisites(&self) -> Result<(), DataError> {
        for q in &self.list {
            for p in &q.definition.prerequisites {
                if !self.by_id.contains_key(p) || *p == q.definition.id {
                    return Err(self.error_at(
                        q,
                        format!(
                            "quest {}: prerequisite {p:?} is not another quest",
                            q.definition.id
                        ),
                    ));
                }
            }
        }
        // Depth-first, three colours: a grey quest met again is a cycle.
        let mut colour = vec![0u8; self.list.len()];
        fn visit(quests: &Quests, i: usize, colour: &mut [u8]) -> Result<(), DataError> {
            colour[i] = 1;
            for p in &quests.list[i].definition.prerequisites {
                let j = quests.by_id[p];
                match colour[j] {
                    1 => {
                        return Err(quests.error_at(
                            &quests.list[i],
                            format!(
                                "quest {}: its prerequisites lead back to it",
                                quests.list[i].definition.id
                            ),
                        ));
                    }
                    0 => visit(quests, j, colour)?,
                    _ => {}
                }
            }
            colour[i] = 2;
            Ok(())
        }
        for i in 0..self.list.len() {
            if colour[i] == 0 {
                visit(self, i, &mut colour)?;
            }
        }
        Ok(())
    }

    /// Checks the references into other data: reward items are skus of the price catalog and
    /// regions are regions of the world.
    pub fn check_refs(
        &self,
        is_sku: impl Fn(&str) -> bool,
        is_region: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        for q in &self.list {
            let reward = q.definition.reward.as_ref();
            if let Some(item) = reward
                .into_iter()
                .flat_map(|r| &r.items)
                .find(|i| !is_sku(i))
            {
                return Err(self.error_at(
                    q,
                    format!(
                        "quest {}: reward item {item:?} is not in the price catalog",
                        q.definition.id
                    ),
                ));
            }
            if !is_region(&q.region) {
                return Err(self.error_at(
                    q,
                    format!(
                        "quest {}: region {:?} is not a region of the world",
                        q.definition.id, q.region
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the quests against the canon: `is_region` says whether an id is a region of the
    /// canon, `is_giver` whether a name is a canon person who has an NPC.
    pub fn check_canon(
        &self,
        is_region: impl Fn(&str) -> bool,
        is_giver: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        for q in &self.list {
            if !is_region(&q.region) {
                return Err(self.error_at(
                    q,
                    format!(
                        "quest {}: region {:?} is not a region of the canon (handlers/data/canon.toml)",
                        q.definition.id, q.region
                    ),
                ));
            }
            if !is_giver(&q.giver) {
                return Err(self.error_at(
                    q,
                    format!(
                        "quest {}: giver {:?} is not the name of a canon person with an NPC (handlers/data/canon.toml, handlers/data/npc/npcs.toml)",
                        q.definition.id, q.giver
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every objective's `on` names an event type that advances quests: one of the
    /// game-event routing table's, or [`TALKED_TO`] with the id of an NPC.
    pub fn check_events(
        &self,
        advances: impl Fn(&str) -> bool,
        is_npc: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        for q in &self.list {
            for o in &q.definition.objectives {
                let Some((event, target)) = o.on.split_once(':') else {
                    continue;
                };
                if event == TALKED_TO {
                    if !is_npc(target) {
                        return Err(self.error_at(
                            q,
                            format!(
                                "quest {}: objective {}: {target:?} is not an NPC id (handlers/data/npc/npcs.toml)",
                                q.definition.id, o.id
                            ),
                        ));
                    }
                    continue;
                }
                if !advances(event) {
                    return Err(self.error_at(
                        q,
                        format!(
                            "quest {}: objective {}: no {event} events advance quests (see the game-event routing table)",
                            q.definition.id, o.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A quest by id.
    pub fn get(&self, id: &str) -> Option<&QuestDef> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// The level reached with `experience`.
    pub fn level_for(&self, experience: u64) -> u32 {
        self.levels
            .iter()
            .take_while(|&&need| need <= experience)
            .count() as u32
    }
}

/// The most levels the table may have: past it a curve is a mistake (a pasted column), not a
/// game.
const MAX_LEVEL: usize = 1000;

impl Content for Quests {
    const SHIPPED: Embedded = crate::embedded!("quest/quests.toml");

    /// Parses and validates one file.
    fn parse(src: &Source) -> Result<Quests, DataError> {
        let file: File = src.toml()?;
        let levels = file.levels.get_ref().clone();
        if levels.first() != Some(&0)
            || levels.windows(2).any(|w| w[0] >= w[1])
            || levels.last().is_some_and(|&l| l > u64::from(u32::MAX))
            || levels.len() > MAX_LEVEL
        {
            return Err(src.error(
                Some(file.levels.span()),
                format!("levels must start at 0 and rise strictly (experience needed for level 1, 2, ...), each at most 4294967295, at most {MAX_LEVEL} levels"),
            ));
        }
        let mut list = Vec::new();
        let mut by_id = HashMap::new();
        for spanned in &file.quest {
            let span = spanned.span();
            let e = spanned.get_ref();
            let bad = |m: String| Err(src.error(Some(span.clone()), m));
            if !valid_slug(&e.id, 48) {
                return bad(format!(
                    "quest id {:?} must be 1 to 48 lowercase letters, digits or '-'",
                    e.id
                ));
            }
            if by_id.contains_key(&e.id) {
                return bad(format!("quest {} appears twice", e.id));
            }
            if !text(&e.title, 60) || !text(&e.description, 400) {
                return bad(format!(
                    "quest {}: title (at most 60 characters) and description (at most 400) are required",
                    e.id
                ));
            }
            if !valid_slug(&e.chain, 48) || !valid_slug(&e.region, 32) || !text(&e.giver, 60) {
                return bad(format!(
                    "quest {}: chain, region and giver are required",
                    e.id
                ));
            }
            if e.min_level == 0 || e.min_level as usize > levels.len() {
                return bad(format!(
                    "quest {}: min_level must be 1 to {} (the levels defined)",
                    e.id,
                    levels.len()
                ));
            }
            if e.objective.is_empty() || e.objective.len() > MAX_OBJECTIVES {
                return bad(format!("quest {}: 1 to {MAX_OBJECTIVES} objectives", e.id));
            }
            let mut objective_ids = BTreeMap::new();
            for o in &e.objective {
                if !valid_slug(&o.id, 48) || objective_ids.insert(o.id.clone(), ()).is_some() {
                    return bad(format!(
                        "quest {}: objective id {:?} must be unique, lowercase letters, digits or '-'",
                        e.id, o.id
                    ));
                }
                if !text(&o.description, 120) || !(1..=MAX_TARGET).contains(&o.target) {
                    return bad(format!(
                        "quest {}: objective {} needs a description (at most 120 characters) and a target of 1 to {MAX_TARGET}",
                        e.id, o.id
                    ));
                }
                if o.on.is_empty() != o.scripted {
                    return bad(format!(
                        "quest {}: objective {}: give it an `on` event, or say `scripted = true` if only the game server's own code moves it (through quest Progress)",
                        e.id, o.id
                    ));
                }
                if !o.on.is_empty() && !valid_on(&o.on) {
                    return bad(format!(
                        "quest {}: objective {}: on {:?} must be \"<event>:<target>\", the event lowercase letters, digits or '_', the target an id (lowercase letters, digits or '-')",
                        e.id, o.id, o.on
                    ));
                }
            }
            if !(0..=MAX_CURRENCY).contains(&e.reward.currency) {
                return bad(format!(
                    "quest {}: reward currency must be 0 to {MAX_CURRENCY} minor units",
                    e.id
                ));
            }
            if e.reward.items.iter().any(|i| i.is_empty() || i.len() > 48) {
                return bad(format!("quest {}: reward items must be skus", e.id));
            }
            by_id.insert(e.id.clone(), list.len());
            list.push(QuestDef {
                definition: QuestDefinition {
                    id: e.id.clone(),
                    title: e.title.clone(),
                    description: e.description.clone(),
                    prerequisites: e.prerequisites.clone(),
                    objectives: e
                        .objective
                        .iter()
                        .map(|o| Objective {
                            id: o.id.clone(),
                            description: o.description.clone(),
                            target_count: o.target,
                            on: o.on.clone(),
                            count: 0,
                        })
                        .collect(),
                    reward: Some(Reward {
                        currency: e.reward.currency,
                        items: e.reward.items.clone(),
                        experience: e.reward.experience,
                    }),
                    min_level: e.min_level,
                },
                chain: e.chain.clone(),
                region: e.region.clone(),
                giver: e.giver.clone(),
                line: src.error(Some(span), "").line,
            });
        }
        if list.is_empty() {
            return Err(src.error(None, "no quests"));
        }
        let quests = Quests {
            list,
            by_id,
            levels,
            file: src.file.clone(),
        };
        quests.check_prerequisites()?;
        Ok(quests)
    }
}

/// `<event>:<target>`: an event type (`enemy_killed`) and an id (`marsh-hound`).
pub fn valid_on(on: &str) -> bool {
    on.split_once(':').is_some_and(|(event, target)| {
        !event.is_empty()
            && event.len() <= 48
            && event
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && valid_slug(target, 48)
    })
}

impl Quests {
    /// The objectives a game event advances: those whose `on` is `on`.
    pub fn listening<'a>(
        &'a self,
        on: &'a str,
    ) -> impl Iterator<Item = (&'a QuestDef, &'a Objective)> + 'a {
        self.list.iter().flat_map(move |q| {
            q.definition
                .objectives
                .iter()
                .filter(move |o| o.on == on)
                .map(move |o| (q, o))
        })
    }
}
