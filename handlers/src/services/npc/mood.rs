//! An NPC's stored state and how it changes: drift back to the archetype's baselines with game
//! time, stimuli, and the bound on each player's influence on the mood.
//!
//! Fairness: each player's influence on an NPC is the mood change their stimuli made, fading
//! with the same half-life as the mood itself. A stimulus moves the mood only as far as keeps
//! that player's influence within the content's `influence_cap`, so one player alone never holds
//! an NPC more than the cap away from where it would be without them (an insult spammer can sour
//! Brenna, not make her hostile). Past the cap a greeting or insult is heard and changes nothing;
//! the answer says `limited`. Services' stimuli (Perceive) are the world's, not bounded.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::content::{Archetype, Effect, NeedValues};

const HOUR_MS: f64 = 3_600_000.0;
/// An influence this small is forgotten.
const FORGOTTEN: f64 = 0.005;
/// Keyed stimuli remembered, for retries (Interact, Gift).
pub const REMEMBERED: usize = 256;

/// What is stored: the state at `at_game_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Needs then.
    pub needs: NeedValues,
    /// Mood then.
    pub mood: f64,
    /// What it is doing.
    pub current_action: String,
    /// Game time of these values.
    pub at_game_ms: i64,
    /// Each player's influence on the mood then (players with a negligible one are left out).
    #[serde(default)]
    pub influence: BTreeMap<String, f64>,
    /// The latest keyed stimuli by players, oldest first: a retry finds its first outcome.
    #[serde(default)]
    pub applied: VecDeque<Applied>,
}

/// A keyed stimulus a player caused, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The player.
    pub player: String,
    /// Their Idempotency-Key.
    pub key: String,
    /// What it did.
    pub outcome: Outcome,
}

/// What a player's stimulus did to the mood.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The change made.
    pub mood_delta: f64,
    /// Whether the player's bound cut it.
    pub limited: bool,
}

/// `value` moved toward `target` by at most `step` (>= 0): never past it.
pub fn approach(value: f64, target: f64, step: f64) -> f64 {
    if value > target {
        (value - step).max(target)
    } else {
        (value + step).min(target)
    }
}

impl State {
    /// A state as the archetype starts, at `game_ms`.
    pub fn fresh(arch: &Archetype, game_ms: i64) -> State {
        State {
            needs: arch.needs,
            mood: arch.mood_baseline,
            current_action: String::new(),
            at_game_ms: game_ms,
            influence: BTreeMap::new(),
            applied: VecDeque::new(),
        }
    }

    /// The state at `game_ms`: each need moves toward its baseline by its rate per hour (never
    /// past it), the mood halves its distance to its baseline every half-life, and so does each
    /// player's influence.
    pub fn at(&self, arch: &Archetype, game_ms: i64) -> State {
        let hours = (game_ms.saturating_sub(self.at_game_ms)).max(0) as f64 / HOUR_MS;
        let mut needs = self.needs;
        for ((n, rate), base) in needs.iter_mut().zip(arch.rates).zip(arch.baseline) {
            *n = approach(*n, base, rate * hours).clamp(0.0, 1.0);
        }
        let decay = 0.5_f64.powf(hours / arch.mood_half_life_hours);
        let influence = self
            .influence
            .iter()
            .map(|(p, v)| (p.clone(), v * decay))
            .filter(|(_, v)| v.abs() >= FORGOTTEN)
            .collect();
        State {
            needs,
            mood: (arch.mood_baseline + (self.mood - arch.mood_baseline) * decay).clamp(-1.0, 1.0),
            current_action: self.current_action.clone(),
            at_game_ms: game_ms.max(self.at_game_ms),
            influence,
            applied: self.applied.clone(),
        }
    }

    /// Applies a stimulus from the world (unbounded).
    pub fn apply(&mut self, effect: &Effect, intensity: f64) {
        for (n, d) in self.needs.iter_mut().zip(effect.needs) {
            *n = (*n + d * intensity).clamp(0.0, 1.0);
        }
        self.mood = (self.mood + effect.mood * intensity).clamp(-1.0, 1.0);
    }

    /// How much more `player` may move the mood in the direction of `want`, within `cap`.
    pub fn room(&self, player: &str, want: f64, cap: f64) -> f64 {
        let current = self.influence.get(player).copied().unwrap_or(0.0);
        if want >= 0.0 {
            (cap - current).max(0.0)
        } else {
            (cap + current).max(0.0)
        }
    }

    /// Applies a stimulus `player` caused: needs as usual, mood within their bound.
    pub fn apply_player(
        &mut self,
        effect: &Effect,
        intensity: f64,
        player: &str,
        cap: f64,
    ) -> Outcome {
        for (n, d) in self.needs.iter_mut().zip(effect.needs) {
            *n = (*n + d * intensity).clamp(0.0, 1.0);
        }
        let want = effect.mood * intensity;
        let room = self.room(player, want, cap);
        let allowed = want.clamp(-room, room);
        let before = self.mood;
        self.mood = (self.mood + allowed).clamp(-1.0, 1.0);
        let made = self.mood - before;
        let influence = self.influence.entry(player.to_owned()).or_insert(0.0);
        *influence += made;
        if influence.abs() < FORGOTTEN {
            self.influence.remove(player);
        }
        Outcome {
            mood_delta: made,
            limited: (made - want).abs() > 1e-9,
        }
    }

    /// The outcome `player`'s stimulus with `key` had, if it is remembered.
    pub fn recalled(&self, player: &str, key: &str) -> Option<Outcome> {
        self.applied
            .iter()
            .find(|a| a.player == player && a.key == key)
            .map(|a| a.outcome)
    }

    /// Remembers a keyed stimulus's outcome (the oldest are forgotten).
    pub fn remember(&mut self, player: &str, key: &str, outcome: Outcome) {
        self.applied.push_back(Applied {
            player: player.to_owned(),
            key: key.to_owned(),
            outcome,
        });
        while self.applied.len() > REMEMBERED {
            self.applied.pop_front();
        }
    }
}

/// A mood in words, for players and for the model.
pub fn mood_label(mood: f64) -> &'static str {
    match mood {
        m if m <= -0.5 => "hostile",
        m if m < -0.15 => "unfriendly",
        m if m < 0.15 => "neutral",
        m if m < 0.5 => "friendly",
        _ => "warm",
    }
}

/// Needs in words, for the model: only those that press.
pub fn needs_words(needs: &NeedValues) -> String {
    const WORDS: [(&str, &str); 4] = [
        ("a little hungry", "very hungry"),
        ("tired", "exhausted"),
        ("lonely", "starved for company"),
        ("uneasy", "afraid"),
    ];
    let pressing: Vec<&str> = needs
        .iter()
        .zip(WORDS)
        .filter_map(|(v, (some, much))| match *v {
            v if v >= 0.7 => Some(much),
            v if v >= 0.4 => Some(some),
            _ => None,
        })
        .collect();
    if pressing.is_empty() {
        "at ease".to_owned()
    } else {
        pressing.join(", ")
    }
}
