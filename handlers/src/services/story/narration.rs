//! What a narration is grounded in: the arc's region (its name and description), the weather and
//! time of day there, the arc's current beat, the player's quests in that region, and passages of
//! the region's lore retrieved for the cue and the story so far (cut to a token budget, see
//! `llm::retrieval`). Every fragment is content, taken whole; the model gets the same grounding
//! (see `llm::grounded`), and the story so far (the player's path through the arc) in its prompt.

use proto::aicore::llm::v1::{ChatMessage, Grounding, LorePassage};
use proto::aicore::world::v1::Region;

use super::content::{ArcDef, Beat};
use crate::services::quest::QuestDef;

/// Documents asked of the library for one narration (the budget keeps fewer or parts of them).
pub const MAX_LORE: usize = 6;
/// Most beats of the story so far in one prompt: the latest; an operator's arc may loop.
pub const MAX_SO_FAR: usize = 12;

/// The moment at the arc's region, each part `None` when its service did not answer.
#[derive(Debug, Clone, Default)]
pub struct Moment<'a> {
    /// The region, from world.
    pub region: Option<&'a Region>,
    /// The weather's condition word ("rain").
    pub weather: Option<&'a str>,
    /// The time of day ("evening").
    pub period: Option<&'a str>,
    /// The season ("winter").
    pub season: Option<&'a str>,
}

/// The grounding for narrating `beat` of `arc`: the beat first (what is happening), then the
/// region's description, then the player's quests here; the retrieved lore as its own passages.
pub fn grounding(
    arc: &ArcDef,
    beat: &Beat,
    moment: &Moment<'_>,
    quests: &[&QuestDef],
    lore: &[LorePassage],
) -> Grounding {
    let mut fragments = vec![beat.text.clone()];
    if let Some(r) = moment.region {
        fragments.push(r.description.clone());
    }
    fragments.extend(
        quests
            .iter()
            .filter(|q| q.region == arc.region)
            .map(|q| q.definition.description.clone()),
    );
    fragments.retain(|f| !f.trim().is_empty());
    fragments.truncate(crate::services::llm::grounded::MAX_FRAGMENTS);
    Grounding {
        place: moment.region.map(|r| r.name.clone()).unwrap_or_default(),
        speaker: String::new(),
        fragments,
        weather: moment.weather.unwrap_or_default().to_owned(),
        period: moment.period.unwrap_or_default().to_owned(),
        mood: String::new(),
        season: moment.season.unwrap_or_default().to_owned(),
        lore: lore.to_vec(),
    }
}

/// The beats of the player's path through `arc` (ids, the current one last) as the story so far:
/// the latest [`MAX_SO_FAR`], in the order the player went through them.
pub fn so_far<'a>(arc: &'a ArcDef, path: &[String]) -> Vec<&'a Beat> {
    let beats: Vec<&Beat> = path.iter().filter_map(|b| arc.beats.get(b)).collect();
    let skip = beats.len().saturating_sub(MAX_SO_FAR);
    beats.into_iter().skip(skip).collect()
}

/// What to search the region's lore for: the cue, then the story so far from its latest beat back
/// (the people and places the player has met), cut to what the library takes.
pub fn lore_query(so_far: &[&Beat], cue: &str) -> String {
    let mut parts = vec![cue];
    parts.extend(so_far.iter().rev().map(|b| b.text.as_str()));
    crate::services::llm::retrieval::query(&parts)
}

/// The messages for the model: how to narrate, the story so far (the player's path, in order),
/// and the cue. The world itself travels as the request's grounding.
pub fn prompt(arc: &ArcDef, so_far: &[&Beat], cue: &str) -> Vec<ChatMessage> {
    let mut ask = format!(
        "Narrate the next moments of \"{}\" from the story so far.",
        arc.title
    );
    if !so_far.is_empty() {
        ask.push_str("\nThe story so far:");
        for (i, b) in so_far.iter().enumerate() {
            ask.push_str(&format!("\n{}. {}", i + 1, b.text.trim()));
        }
    }
    if !cue.is_empty() {
        ask.push_str(&format!("\nNow: {cue}"));
    }
    vec![
        ChatMessage {
            role: "system".into(),
            content: "You are the narrator of a fantasy game. Narrate the next moments in the \
                      second person and present tense, true to the world given, without choosing \
                      for the player."
                .into(),
        },
        ChatMessage {
            role: "user".into(),
            content: ask,
        },
    ]
}
