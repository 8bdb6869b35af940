//! The game-event routing table (`handlers/data/bodybroker/events.toml`): which event types a
//! game server may send, what their payloads hold, and where each is delivered. Validated at load
//! with errors that name the file and the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};

/// Longest description.
const MAX_DESCRIPTION: usize = 200;
/// Most payload fields per event type.
const MAX_FIELDS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    event: Vec<Spanned<EventEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventEntry {
    #[serde(rename = "type")]
    kind: String,
    description: String,
    #[serde(default)]
    payload: BTreeMap<String, FieldType>,
    #[serde(default)]
    required: Vec<String>,
    quest: Option<QuestEntry>,
    world: Option<WorldEntry>,
    npc: Option<NpcEntry>,
    publish: Option<PublishEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpcEntry {
    target: String,
    kind: Interaction,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestEntry {
    target: String,
    amount: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorldEntry {
    position: [String; 3],
    from: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishEntry {
    topic: Topic,
}

/// A payload field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text, at most 200 characters.
    String,
    /// A whole number.
    Integer,
    /// Any finite number.
    Number,
}

/// Where a published game event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// `player.<playerId>`: that player only.
    Player,
    /// `world.<regionId>`: everyone in the region.
    World,
}

/// What a quest delivery advances objectives by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A payload field's value.
    Field(String),
    /// The event's region id.
    Region,
}

/// Advance quest objectives whose `on` is `<type>:<target>`.
#[derive(Debug, Clone)]
pub struct QuestDelivery {
    /// What the objectives listen for.
    pub target: Target,
    /// The integer field with the amount (1 when absent).
    pub amount: Option<String>,
}

/// Move the player's entity.
#[derive(Debug, Clone)]
pub struct WorldDelivery {
    /// The x, y and z fields.
    pub position: [String; 3],
    /// The field naming the region the player left.
    pub from: Option<String>,
}

/// What a player did to an NPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interaction {
    /// A greeting.
    Greet,
    /// An insult.
    Insult,
}

/// Tell the NPC service what the player did to an NPC (its mood moves, within the player's bound).
#[derive(Debug, Clone)]
pub struct NpcDelivery {
    /// The field holding the NPC's id.
    pub target: String,
    /// What the player did.
    pub kind: Interaction,
}

/// One event type.
#[derive(Debug, Clone)]
pub struct EventDef {
    /// e.g. `enemy_killed`.
    pub kind: String,
    /// What happened, for the docs.
    pub description: String,
    /// Its payload's fields.
    pub payload: BTreeMap<String, FieldType>,
    /// Fields that must be present.
    pub required: Vec<String>,
    /// Deliveries, made in this order.
    pub quest: Option<QuestDelivery>,
    /// See [`WorldDelivery`].
    pub world: Option<WorldDelivery>,
    /// See [`NpcDelivery`].
    pub npc: Option<NpcDelivery>,
    /// Published on the events bus as `game.<type>`.
    pub publish: Option<Topic>,
}

impl EventDef {
    /// Whether a delivery needs the event's region.
    pub fn needs_region(&self) -> bool {
        self.world.is_some()
            || self.publish == Some(Topic::World)
            || self
                .quest
                .as_ref()
                .is_some_and(|q| q.target == Target::Region)
    }
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct GameEvents {
    by_type: BTreeMap<String, EventDef>,
}

fn valid_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl GameEvents {
    /// An event type.
    pub fn get(&self, kind: &str) -> Option<&EventDef> {
        self.by_type.get(kind)
    }

    /// Every event type, by name.
    pub fn iter(&self) -> impl Iterator<Item = &EventDef> {
        self.by_type.values()
    }

    /// Whether events of `kind` advance quests (so an objective's `on` may name it).
    pub fn advances_quests(&self, kind: &str) -> bool {
        self.get(kind).is_some_and(|e| e.quest.is_some())
    }
}

impl Content for GameEvents {
    const SHIPPED: Embedded = crate::embedded!("bodybroker/events.toml");

    /// Parses and validates a routing table.
    fn parse(src: &Source) -> Result<GameEvents, DataError> {
        let file: File = src.toml()?;
        let mut by_type = BTreeMap::new();
        for spanned in file.event {
            let span = Some(spanned.span());
            let e = spanned.into_inner();
            let bad = |m: String| src.error(span.clone(), m);
            if !valid_type(&e.kind) {
                return Err(bad(format!(
                    "event type {:?} must be 1 to 48 lowercase letters, digits or '_'",
                    e.kind
                )));
            }
            let t = &e.kind;
            if by_type.contains_key(t) {
                return Err(bad(format!("event type {t} is listed twice")));
            }
            if e.description.trim().is_empty() || e.description.chars().count() > MAX_DESCRIPTION {
                return Err(bad(format!(
                    "event {t}: description must be 1 to {MAX_DESCRIPTION} characters"
                )));
            }
            if e.payload.len() > MAX_FIELDS || e.payload.keys().any(|k| !valid_type(k)) {
                return Err(bad(format!(
                    "event {t}: at most {MAX_FIELDS} payload fields, named with lowercase letters, digits or '_'"
                )));
            }
            let field = |name: &str, want: &[FieldType]| -> Result<(), String> {
                match e.payload.get(name) {
                    Some(ty) if want.contains(ty) => Ok(()),
                    Some(ty) => Err(format!(
                        "event {t}: field {name} is {ty:?}, but this use needs {want:?}"
                    )),
                    None => Err(format!("event {t}: {name} is not a payload field")),
                }
            };
            for r in &e.required {
                field(
                    r,
                    &[FieldType::String, FieldType::Integer, FieldType::Number],
                )
                .map_err(bad)?;
            }
            let quest = match e.quest {
                Some(q) => {
                    let target = if q.target == "$region" {
                        Target::Region
                    } else {
                        field(&q.target, &[FieldType::String]).map_err(bad)?;
                        if !e.required.contains(&q.target) {
                            return Err(bad(format!(
                                "event {t}: the quest target field {} must be required",
                                q.target
                            )));
                        }
                        Target::Field(q.target)
                    };
                    if let Some(a) = &q.amount {
                        field(a, &[FieldType::Integer]).map_err(bad)?;
                    }
                    Some(QuestDelivery {
                        target,
                        amount: q.amount,
                    })
                }
                None => None,
            };
            let world = match e.world {
                Some(w) => {
                    for p in &w.position {
                        field(p, &[FieldType::Integer, FieldType::Number]).map_err(bad)?;
                        if !e.required.contains(p) {
                            return Err(bad(format!(
                                "event {t}: the position field {p} must be required"
                            )));
                        }
                    }
                    if let Some(f) = &w.from {
                        field(f, &[FieldType::String]).map_err(bad)?;
                    }
                    Some(WorldDelivery {
                        position: w.position,
                        from: w.from,
                    })
                }
                None => None,
            };
            let npc = match e.npc {
                Some(n) => {
                    field(&n.target, &[FieldType::String]).map_err(bad)?;
                    if !e.required.contains(&n.target) {
                        return Err(bad(format!(
                            "event {t}: the npc target field {} must be required",
                            n.target
                        )));
                    }
                    Some(NpcDelivery {
                        target: n.target,
                        kind: n.kind,
                    })
                }
                None => None,
            };
            let publish = e.publish.map(|p| p.topic);
            if quest.is_none() && world.is_none() && npc.is_none() && publish.is_none() {
                return Err(bad(format!(
                    "event {t} has no delivery: give it quest, world, npc or publish"
                )));
            }
            by_type.insert(
                t.clone(),
                EventDef {
                    kind: e.kind.clone(),
                    description: e.description,
                    payload: e.payload,
                    required: e.required,
                    quest,
                    world,
                    npc,
                    publish,
                },
            );
        }
        if by_type.is_empty() {
            return Err(src.error(None, "the routing table lists no event types"));
        }
        Ok(GameEvents { by_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GameEvents, DataError> {
        GameEvents::parse(&Source::embedded("events.toml", text))
    }

    #[test]
    fn the_shipped_table_loads() {
        let t = GameEvents::load(None).unwrap();
        let killed = t.get("enemy_killed").unwrap();
        assert!(killed.quest.is_some() && killed.publish == Some(Topic::Player));
        let entered = t.get("region_entered").unwrap();
        assert!(entered.needs_region() && entered.world.is_some());
        assert!(t.advances_quests("item_collected"));
        assert!(!t.advances_quests("player_died"));
        let greeted = t.get("npc_greeted").unwrap().npc.as_ref().unwrap();
        assert_eq!(
            (greeted.target.as_str(), greeted.kind),
            ("npc", Interaction::Greet)
        );
    }

    #[test]
    fn errors_name_the_line() {
        let head = "[[event]]\ntype = \"a\"\ndescription = \"d\"\n";
        let cases = [
            (
                "[[event]]\ntype = \"Bad Type\"\ndescription = \"d\"\npublish = { topic = \"player\" }\n",
                "lowercase",
            ),
            (
                &format!(
                    "{head}publish = {{ topic = \"player\" }}\n{head}publish = {{ topic = \"player\" }}\n"
                ),
                "twice",
            ),
            (
                &format!("{head}payload = {{ n = \"integer\" }}\nquest = {{ target = \"n\" }}\n"),
                "needs",
            ),
            (
                &format!("{head}payload = {{ n = \"string\" }}\nquest = {{ target = \"n\" }}\n"),
                "must be required",
            ),
            (head, "no delivery"),
            (
                &format!(
                    "{head}payload = {{ n = \"string\" }}\nnpc = {{ target = \"n\", kind = \"greet\" }}\n"
                ),
                "npc target field n must be required",
            ),
            (
                &format!(
                    "{head}payload = {{ n = \"string\" }}\nrequired = [\"n\"]\nnpc = {{ target = \"n\", kind = \"hug\" }}\n"
                ),
                "unknown variant",
            ),
            (
                &format!("{head}publish = {{ topic = \"guild\" }}\n"),
                "unknown variant",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            assert!(e.line >= 1);
        }
        let e = parse(&format!("\n\n{head}publish = {{ topic = \"player\" }}\n[[event]]\ntype = \"b\"\ndescription = \"\"\npublish = {{ topic = \"player\" }}\n")).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
    }
}
