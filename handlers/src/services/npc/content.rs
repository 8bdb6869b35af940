//! The NPC data (`handlers/data/npc/npcs.toml`, `actions.toml`): archetypes, NPCs with their
//! places, personas and lore, stimuli, and the actions the utility system scores
//! (`super::utility`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{DataError, Embedded, Source};

/// The shipped NPCs, archetypes and stimuli.
pub const NPCS: Embedded = crate::embedded!("npc/npcs.toml");
/// The shipped action catalog.
pub const ACTIONS: Embedded = crate::embedded!("npc/actions.toml");

/// The four needs, in a fixed order: hunger, rest, social, safety.
pub const NEEDS: [&str; 4] = ["hunger", "rest", "social", "safety"];

/// Needs, 0 (satisfied) to 1 (urgent), in [`NEEDS`] order.
pub type NeedValues = [f64; 4];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpcsFile {
    influence_cap: Spanned<f64>,
    archetype: BTreeMap<String, Spanned<ArchetypeEntry>>,
    npc: Vec<Spanned<NpcEntry>>,
    stimulus: BTreeMap<String, Spanned<StimulusEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchetypeEntry {
    name: String,
    needs: BTreeMap<String, f64>,
    baseline: BTreeMap<String, f64>,
    rates: BTreeMap<String, f64>,
    mood_baseline: f64,
    mood_half_life_hours: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpcEntry {
    id: String,
    name: String,
    archetype: String,
    region: String,
    position: [f64; 3],
    persona: String,
    #[serde(default)]
    knows: Vec<String>,
    canon: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StimulusEntry {
    effects: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsFile {
    commitment: Spanned<f64>,
    action: Vec<Spanned<ActionEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionEntry {
    id: String,
    description: String,
    considerations: Vec<Spanned<ConsiderationEntry>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct ConsiderationEntry {
    input: Input,
    curve: CurveKind,
    m: f64,
    k: f64,
    c: f64,
    b: f64,
}

/// What a consideration reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    /// Need 0.
    Hunger,
    /// Need 1.
    Rest,
    /// Need 2.
    Social,
    /// Need 3.
    Safety,
    /// Mood, read as `(mood + 1) / 2`.
    Mood,
}

/// The shape of a response curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurveKind {
    /// `m * (x - c) + b` (k ignored, as 1).
    Linear,
    /// `m * (x - c)^k + b`.
    Polynomial,
    /// `b + k / (1 + e^(-m (x - c)))`.
    Logistic,
}

/// One response curve over one input.
#[derive(Debug, Clone, Copy)]
pub struct Consideration {
    /// What it reads.
    pub input: Input,
    /// Its shape.
    pub curve: CurveKind,
    /// Slope or steepness.
    pub m: f64,
    /// Exponent or height.
    pub k: f64,
    /// Horizontal shift.
    pub c: f64,
    /// Vertical shift.
    pub b: f64,
}

/// An action and how it is scored.
#[derive(Debug, Clone)]
pub struct Action {
    /// Its id.
    pub id: String,
    /// What it is.
    pub description: String,
    /// Its considerations, multiplied.
    pub considerations: Vec<Consideration>,
}

/// An archetype.
#[derive(Debug, Clone)]
pub struct Archetype {
    /// Its id.
    pub id: String,
    /// What players call it.
    pub name: String,
    /// Needs at first sight.
    pub needs: NeedValues,
    /// Where needs settle without stimulus.
    pub baseline: NeedValues,
    /// Change per game hour.
    pub rates: NeedValues,
    /// Where mood settles.
    pub mood_baseline: f64,
    /// Game hours for mood to halve its distance to the baseline.
    pub mood_half_life_hours: f64,
}

/// An NPC of the data.
#[derive(Debug, Clone)]
pub struct NpcDef {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its archetype's id.
    pub archetype: String,
    /// The region it stands in.
    pub region: String,
    /// Where, `[x, y, z]`.
    pub position: [f64; 3],
    /// Who they are and how they speak, for the model.
    pub persona: String,
    /// Lore documents they can speak about, most important first.
    pub knows: Vec<String>,
    /// The person they are in the canon (`handlers/data/canon.toml`): `canon`, or their id.
    pub canon: String,
    /// Its line in the file, for errors found against other files.
    pub line: usize,
}

impl NpcDef {
    /// What a player may read of them: the persona's first sentence.
    pub fn description(&self) -> &str {
        match self.persona.find(". ") {
            Some(i) => &self.persona[..=i],
            None => &self.persona,
        }
    }

    /// Their body's id in the world.
    pub fn entity_id(&self) -> String {
        format!("npc-{}", self.id)
    }
}

/// What a stimulus does per unit of intensity: needs, then mood.
#[derive(Debug, Clone, Copy)]
pub struct Effect {
    /// Added to needs.
    pub needs: NeedValues,
    /// Added to mood.
    pub mood: f64,
}

/// All NPC data.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Archetypes by id.
    pub archetypes: BTreeMap<String, Archetype>,
    /// NPCs by id.
    pub npcs: BTreeMap<String, NpcDef>,
    /// Stimuli by kind.
    pub stimuli: BTreeMap<String, Effect>,
    /// Actions, in file order.
    pub actions: Vec<Action>,
    /// The current action's bonus: this share of its distance to 1.
    pub commitment: f64,
    /// The most one player moves an NPC's mood, 0 to 1.
    pub influence_cap: f64,
    /// The NPC file's name, for errors found against other files.
    pub file: String,
}

/// The stimuli players cause, which must be in the data.
pub const PLAYER_STIMULI: [&str; 3] = ["greeting", "insult", "gift"];

/// Persona length in bytes.
const PERSONA: std::ops::RangeInclusive<usize> = 40..=900;

fn needs_from(
    src: &Source,
    span: std::ops::Range<usize>,
    map: &BTreeMap<String, f64>,
    what: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<NeedValues, DataError> {
    let mut out = [0.0; 4];
    for (k, v) in map {
        let i = NEEDS.iter().position(|n| n == k).ok_or_else(|| {
            src.error(
                Some(span.clone()),
                format!("{what}: unknown need {k:?}; needs are {NEEDS:?}"),
            )
        })?;
        if !range.contains(v) {
            return Err(src.error(
                Some(span.clone()),
                format!("{what}.{k} must be {range:?}, got {v}"),
            ));
        }
        out[i] = *v;
    }
    Ok(out)
}

/// Every need needs a rate above 0, so that none stays at an extreme forever.
fn rates_from(
    src: &Source,
    span: std::ops::Range<usize>,
    map: &BTreeMap<String, f64>,
    what: &str,
) -> Result<NeedValues, DataError> {
    let rates = needs_from(src, span.clone(), map, &format!("{what}.rates"), 0.0..=1.0)?;
    if let Some(i) = rates.iter().position(|r| *r <= 0.0) {
        return Err(src.error(
            Some(span),
            format!(
                "{what}.rates.{} must be above 0 (each need returns to its baseline)",
                NEEDS[i]
            ),
        ));
    }
    Ok(rates)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Catalog {
    /// The shipped files.
    pub fn embedded() -> Result<Catalog, DataError> {
        Catalog::parse(&NPCS.source(), &ACTIONS.source())
    }

    /// Operators' files (a directory holding `npcs.toml` and `actions.toml`), or the shipped.
    pub fn load(dir: Option<&Path>) -> Result<Catalog, DataError> {
        match dir {
            Some(d) => Catalog::parse(
                &Source::read(&d.join("npcs.toml"))?,
                &Source::read(&d.join("actions.toml"))?,
            ),
            None => Catalog::embedded(),
        }
    }

    /// Parses and validates both files.
    pub fn parse(npcs: &Source, actions: &Source) -> Result<Catalog, DataError> {
        let file: NpcsFile = npcs.toml()?;
        let mut archetypes = BTreeMap::new();
        for (id, a) in &file.archetype {
            let e = a.get_ref();
            let what = format!("archetype.{id}");
            if !((-1.0..=1.0).contains(&e.mood_baseline)
                && e.mood_half_life_hours > 0.0
                && e.mood_half_life_hours <= 1000.0)
            {
                return Err(npcs.error(
                    Some(a.span()),
                    format!("{what}: mood_baseline -1 to 1, mood_half_life_hours above 0"),
                ));
            }
            archetypes.insert(
                id.clone(),
                Archetype {
                    id: id.clone(),
                    name: e.name.clone(),
                    needs: needs_from(
                        npcs,
                        a.span(),
                        &e.needs,
                        &format!("{what}.needs"),
                        0.0..=1.0,
                    )?,
                    baseline: needs_from(
                        npcs,
                        a.span(),
                        &e.baseline,
                        &format!("{what}.baseline"),
                        0.0..=1.0,
                    )?,
                    rates: rates_from(npcs, a.span(), &e.rates, &what)?,
                    mood_baseline: e.mood_baseline,
                    mood_half_life_hours: e.mood_half_life_hours,
                },
            );
        }
        let mut defs = BTreeMap::new();
        for n in &file.npc {
            let e = n.get_ref();
            if !valid_id(&e.id) || e.name.trim().is_empty() {
                return Err(npcs.error(
                    Some(n.span()),
                    format!(
                        "npc {:?}: id of lowercase letters, digits, '-' or '_', and a name",
                        e.id
                    ),
                ));
            }
            if !archetypes.contains_key(&e.archetype) {
                return Err(npcs.error(
                    Some(n.span()),
                    format!("npc {}: no archetype {:?}", e.id, e.archetype),
                ));
            }
            if defs.contains_key(&e.id) {
                return Err(npcs.error(Some(n.span()), format!("npc {} appears twice", e.id)));
            }
            let sentences = e.persona.matches(". ").count() + 1;
            if !PERSONA.contains(&e.persona.len())
                || !(2..=4).contains(&sentences)
                || e.persona.chars().any(char::is_control)
            {
                return Err(npcs.error(
                    Some(n.span()),
                    format!(
                        "npc {}: persona of 2 to 4 sentences, {} to {} bytes, on one line",
                        e.id,
                        PERSONA.start(),
                        PERSONA.end()
                    ),
                ));
            }
            if e.position.iter().any(|v| !v.is_finite()) {
                return Err(npcs.error(
                    Some(n.span()),
                    format!("npc {}: position must be finite", e.id),
                ));
            }
            if e.knows.len() > 8 || e.knows.iter().any(|k| !valid_id(k)) {
                return Err(npcs.error(
                    Some(n.span()),
                    format!("npc {}: knows at most 8 lore document ids", e.id),
                ));
            }
            defs.insert(
                e.id.clone(),
                NpcDef {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    archetype: e.archetype.clone(),
                    region: e.region.clone(),
                    position: e.position,
                    persona: e.persona.clone(),
                    knows: e.knows.clone(),
                    canon: e.canon.clone().unwrap_or_else(|| e.id.clone()),
                    line: npcs.error(Some(n.span()), "").line,
                },
            );
        }
        let mut stimuli = BTreeMap::new();
        for (kind, s) in &file.stimulus {
            let mut needs = BTreeMap::new();
            let mut mood = 0.0;
            for (k, v) in &s.get_ref().effects {
                if k == "mood" {
                    mood = *v;
                } else {
                    needs.insert(k.clone(), *v);
                }
            }
            let needs = needs_from(
                npcs,
                s.span(),
                &needs,
                &format!("stimulus.{kind}.effects"),
                -1.0..=1.0,
            )?;
            if !(-2.0..=2.0).contains(&mood) {
                return Err(npcs.error(
                    Some(s.span()),
                    format!("stimulus.{kind}: mood effect -2 to 2"),
                ));
            }
            stimuli.insert(kind.clone(), Effect { needs, mood });
        }
        if let Some(missing) = PLAYER_STIMULI.iter().find(|k| !stimuli.contains_key(**k)) {
            return Err(npcs.error(
                None,
                format!("stimulus.{missing} is required: players cause it"),
            ));
        }
        let influence_cap = *file.influence_cap.get_ref();
        if !(0.0..=1.0).contains(&influence_cap) {
            return Err(npcs.error(
                Some(file.influence_cap.span()),
                "influence_cap must be 0 to 1",
            ));
        }

        let file: ActionsFile = actions.toml()?;
        let commitment = *file.commitment.get_ref();
        if !(0.0..0.5).contains(&commitment) {
            return Err(actions.error(
                Some(file.commitment.span()),
                "commitment must be 0 to below 0.5",
            ));
        }
        let mut list: Vec<Action> = Vec::new();
        for a in &file.action {
            let e = a.get_ref();
            if !valid_id(&e.id) || list.iter().any(|x| x.id == e.id) {
                return Err(actions.error(
                    Some(a.span()),
                    format!(
                        "action {:?}: a unique id of lowercase letters, digits, '-' or '_'",
                        e.id
                    ),
                ));
            }
            if e.considerations.is_empty() {
                return Err(actions.error(
                    Some(a.span()),
                    format!("action {} has no considerations", e.id),
                ));
            }
            let mut considerations = Vec::new();
            for c in &e.considerations {
                let v = c.get_ref();
                if [v.m, v.k, v.c, v.b].iter().any(|x| !x.is_finite())
                    || (v.curve == CurveKind::Polynomial && !(0.0..=10.0).contains(&v.k))
                {
                    return Err(actions.error(
                        Some(c.span()),
                        "curve parameters must be finite; a polynomial's k 0 to 10",
                    ));
                }
                considerations.push(Consideration {
                    input: v.input,
                    curve: v.curve,
                    m: v.m,
                    k: v.k,
                    c: v.c,
                    b: v.b,
                });
            }
            list.push(Action {
                id: e.id.clone(),
                description: e.description.clone(),
                considerations,
            });
        }
        Ok(Catalog {
            archetypes,
            npcs: defs,
            stimuli,
            actions: list,
            commitment,
            influence_cap,
            file: npcs.file.clone(),
        })
    }

    /// Checks what the NPCs name in other files: `region` gives a region's bounds (`None`: no
    /// such region), `is_lore` says whether a lore document exists. The error names the NPC's
    /// line.
    pub fn check_refs(
        &self,
        region: impl Fn(&str) -> Option<([f64; 3], [f64; 3])>,
        is_lore: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        let at = |n: &NpcDef, message: String| DataError {
            file: self.file.clone(),
            line: n.line,
            message,
        };
        for n in self.npcs.values() {
            let Some((min, max)) = region(&n.region) else {
                return Err(at(
                    n,
                    format!(
                        "npc {}: region {:?} is not a region of the world",
                        n.id, n.region
                    ),
                ));
            };
            if (0..3).any(|i| !(min[i] <= n.position[i] && n.position[i] <= max[i])) {
                return Err(at(
                    n,
                    format!(
                        "npc {}: position {:?} is outside region {} ({min:?} to {max:?})",
                        n.id, n.position, n.region
                    ),
                ));
            }
            if let Some(doc) = n.knows.iter().find(|k| !is_lore(k)) {
                return Err(at(
                    n,
                    format!("npc {}: knows {doc:?}, which is not a lore document", n.id),
                ));
            }
        }
        Ok(())
    }

    /// The NPCs of a region, by id.
    pub fn in_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a NpcDef> + 'a {
        self.npcs.values().filter(move |n| n.region == region)
    }

    /// Every NPC's body, as the world places it: entity `npc-<id>`, kind "npc".
    pub fn bodies(&self) -> Vec<proto::aicore::world::v1::Entity> {
        self.npcs
            .values()
            .map(|n| proto::aicore::world::v1::Entity {
                id: n.entity_id(),
                region_id: n.region.clone(),
                kind: "npc".into(),
                position: Some(proto::aicore::world::v1::Vec3 {
                    x: n.position[0],
                    y: n.position[1],
                    z: n.position[2],
                }),
                attributes: [
                    ("name".to_owned(), n.name.clone()),
                    ("npc".to_owned(), n.id.clone()),
                    ("archetype".to_owned(), n.archetype.clone()),
                ]
                .into_iter()
                .collect(),
                version: 0,
            })
            .collect()
    }

    /// An action by id.
    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }
}
