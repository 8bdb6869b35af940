//! What a narration is grounded in: the arc's region (its name and description), the weather and
//! time of day there, the arc's current beat, the player's quests in that region, and lore of the
//! region retrieved for the cue. Every fragment is content, taken whole; the model gets the same
//! grounding (see `llm::grounded`).

use proto::aicore::llm::v1::{ChatMessage, Grounding};
use proto::aicore::world::v1::Region;

use super::content::{ArcDef, Beat};
use crate::services::quest::QuestDef;

/// Lore passages in one narration.
pub const MAX_LORE: usize = 2;

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

/// The grounding for narrating `beat` of `arc`: the beat first (what is happening), then lore
/// retrieved for it, then the region's description, then the player's quests here.
pub fn grounding(
    arc: &ArcDef,
    beat: &Beat,
    moment: &Moment<'_>,
    quests: &[&QuestDef],
    lore: &[String],
) -> Grounding {
    let mut fragments = vec![beat.text.clone()];
    fragments.extend(lore.iter().take(MAX_LORE).cloned());
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
    }
}

/// What to search the region's lore for: the cue, else the beat.
pub fn lore_query(beat: &Beat, cue: &str) -> String {
    if cue.trim().is_empty() {
        beat.text.clone()
    } else {
        format!("{cue} {}", beat.text)
    }
}

/// The messages for the model: how to narrate, and the cue. The world itself travels as the
/// request's grounding.
pub fn prompt(arc: &ArcDef, cue: &str) -> Vec<ChatMessage> {
    let mut ask = format!(
        "Narrate the next moments of \"{}\" from the story so far.",
        arc.title
    );
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
