//! What the grammar model says: text composed only from the request's [`Grounding`] (sentences
//! taken whole from content, and the words of the moment) joined by a few fixed connective phrases
//! that name no one and nowhere. Whatever it says about the world is therefore in the request's
//! own content: it cannot invent a mill in a marsh. With no grounding it says so, and names
//! nothing.
//!
//! The same grounding, rendered by [`render`], goes into a real model's prompt.

use proto::aicore::llm::v1::{Grounding, LorePassage};

/// SplitMix64: tiny, and fixed forever, unlike a library RNG whose stream may change with a
/// version bump (the same seed must give the same text).
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Most fragments a request may carry, and the longest.
pub const MAX_FRAGMENTS: usize = 32;
/// The longest fragment, in characters.
pub const MAX_FRAGMENT: usize = 1000;
/// The longest of the one-word fields and names, in characters.
pub const MAX_WORD: usize = 128;
/// Most lore passages a request may carry.
pub const MAX_PASSAGES: usize = 8;
/// The longest lore passage title, in characters.
pub const MAX_TITLE: usize = 200;

/// The line of a lore passage in a rendered prompt, under the "Lore" heading.
pub fn lore_line(p: &LorePassage) -> String {
    format!("- {}: {}\n", p.title.trim(), p.text.trim())
}

/// The generator's own sentences. Slots in braces take the grounding's words: `{place}`,
/// `{speaker}`, `{moment}` (a clause of weather and time), `{mood}`; a slot written with a capital
/// (`{Moment}`) starts a sentence. Nothing else here may name a person, place or thing (a test
/// checks that no word but a sentence's first is capitalised).
pub mod rules {
    /// The narrator's first sentence, with a place.
    pub const OPENINGS: &[&str] = &[
        "{Moment} over {place}.",
        "You are in {place}; {moment}.",
        "Here in {place}, {moment}.",
    ];
    /// The narrator's first sentence when the moment is not known.
    pub const OPENINGS_BARE: &[&str] = &["You are in {place}.", "Here is {place}."];
    /// How a speaker meets you.
    pub const GREETINGS: &[&str] = &[
        "{speaker} looks up at you {mood}.",
        "{speaker} turns to you {mood}.",
        "{speaker} meets your eye {mood}.",
    ];
    /// Between two fragments, now and then.
    pub const LINKS: &[&str] = &[
        "You take it in.",
        "Nothing here hurries.",
        "You remember what is said of this.",
    ];
    /// The narrator's last sentence.
    pub const CLOSINGS: &[&str] = &[
        "What you do next is yours to choose.",
        "The moment waits on you.",
        "",
    ];
    /// A speaker's last sentence.
    pub const PARTINGS: &[&str] = &[
        "That is all there is to say for now.",
        "The talk falls quiet.",
        "",
    ];
    /// Before an answer, when the prompt asks something.
    pub const HEDGES: &[&str] = &[
        "Hard to say, but this much is plain.",
        "Only this is certain.",
    ];
    /// With no grounding at all: what it is, and that it names nothing (one of each, by the seed;
    /// short enough for a 40-token reply to end).
    pub const UNGROUNDED: &[&[&str]] = &[
        &[
            "I am the built-in text generator, not a language model.",
            "This is the built-in text generator; it is no language model.",
        ],
        &[
            "This request gave me no world, so I name nothing.",
            "Nothing in this request tells me of a world, so I name no one and nowhere.",
        ],
        &[
            "Send a grounding and I speak only from it.",
            "Give me a place, a person or a passage, and I speak of those alone.",
        ],
    ];
    /// What it says again and again, ungrounded, when asked to go on at length.
    pub const UNGROUNDED_MORE: &[&str] = &[
        "I can only repeat what I am given.",
        "Nothing more is known to me.",
        "Every word of a world must come from the request.",
    ];
    /// Weather words, as clauses: the word and its clause.
    pub const WEATHER: &[(&str, &str)] = &[
        ("clear", "the sky is clear"),
        ("cloudy", "cloud hangs low"),
        ("rain", "rain is falling"),
        ("storm", "a storm is blowing"),
        ("snow", "snow is falling"),
        ("fog", "fog lies close"),
    ];
    /// Times of day, as phrases.
    pub const PERIODS: &[(&str, &str)] = &[
        ("dawn", "at dawn"),
        ("morning", "in the morning"),
        ("afternoon", "in the afternoon"),
        ("evening", "in the evening"),
        ("night", "at night"),
    ];
    /// The seasons the game calendar names; any other word is left unsaid.
    pub const SEASONS: &[&str] = &["spring", "summer", "autumn", "winter"];
    /// Times of day in a known season.
    pub const SEASONED_PERIODS: &[(&str, &str)] = &[
        ("dawn", "at a {season} dawn"),
        ("morning", "on a {season} morning"),
        ("afternoon", "on a {season} afternoon"),
        ("evening", "on a {season} evening"),
        ("night", "on a {season} night"),
    ];
    /// Moods, as the manner of a greeting.
    pub const MOODS: &[(&str, &str)] = &[
        ("hostile", "with open hostility"),
        ("unfriendly", "coolly"),
        ("neutral", "evenly"),
        ("friendly", "with a nod"),
        ("warm", "warmly"),
    ];
}

/// Whether the grounding gives anything to speak from.
pub fn is_empty(g: &Grounding) -> bool {
    g.place.trim().is_empty()
        && g.speaker.trim().is_empty()
        && g.fragments.is_empty()
        && g.lore.is_empty()
}

/// Why a grounding is refused, if it is.
pub fn check(g: &Grounding) -> Option<String> {
    let words = [
        &g.place, &g.speaker, &g.weather, &g.period, &g.mood, &g.season,
    ];
    if words.iter().any(|w| w.chars().count() > MAX_WORD) {
        return Some(format!(
            "grounding: place, speaker, weather, period, mood and season are at most {MAX_WORD} characters"
        ));
    }
    if g.fragments.len() > MAX_FRAGMENTS
        || g.fragments
            .iter()
            .any(|f| f.trim().is_empty() || f.chars().count() > MAX_FRAGMENT)
    {
        return Some(format!(
            "grounding: at most {MAX_FRAGMENTS} fragments of 1 to {MAX_FRAGMENT} characters"
        ));
    }
    if g.lore.len() > MAX_PASSAGES
        || g.lore.iter().any(|p| {
            p.text.trim().is_empty()
                || p.text.chars().count() > MAX_FRAGMENT
                || p.title.chars().count() > MAX_TITLE
                || p.document.chars().count() > MAX_WORD
        })
    {
        return Some(format!(
            "grounding: at most {MAX_PASSAGES} lore passages of 1 to {MAX_FRAGMENT} characters, \
             titles of at most {MAX_TITLE}"
        ));
    }
    None
}

/// The grounding as prompt text for a real model: the same world the grammar model speaks from.
pub fn render(g: &Grounding) -> String {
    let mut out = String::from(
        "Keep to this world: name no person, place or thing that is not in it or in the \
         conversation.\n",
    );
    for (label, value) in [
        ("Place", &g.place),
        ("Speaker", &g.speaker),
        ("Weather", &g.weather),
        ("Time of day", &g.period),
        ("Season", &g.season),
        ("Mood", &g.mood),
    ] {
        if !value.trim().is_empty() {
            out.push_str(&format!("{label}: {}\n", value.trim()));
        }
    }
    if !g.fragments.is_empty() {
        out.push_str("What is true here:\n");
        for f in &g.fragments {
            out.push_str(&format!("- {}\n", f.trim()));
        }
    }
    if !g.lore.is_empty() {
        out.push_str("Lore:\n");
        for p in &g.lore {
            out.push_str(&lore_line(p));
        }
    }
    out
}

/// The sentences of `text` (split after '.', '!' or '?' followed by a space), trimmed.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(|n| *n == b' ') {
            out.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The words of `text` of four letters or more, lowercased: what passages are matched on.
pub fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 3)
        .map(str::to_lowercase)
        .collect()
}

fn lookup<'a>(table: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn pick<'a>(rng: &mut SplitMix, from: &[&'a str]) -> &'a str {
    let n = u64::try_from(from.len()).unwrap_or(1).max(1);
    from.get(usize::try_from(rng.next_u64() % n).unwrap_or(0))
        .copied()
        .unwrap_or_default()
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The moment as a clause ("rain is falling on a winter evening"), if any of it is known.
fn moment(g: &Grounding) -> Option<String> {
    let weather = g.weather.trim().to_lowercase();
    let period = g.period.trim().to_lowercase();
    let season = g.season.trim().to_lowercase();
    let season = rules::SEASONS.contains(&season.as_str()).then_some(season);
    let weather = (!weather.is_empty()).then(|| {
        lookup(rules::WEATHER, &weather)
            .map_or_else(|| format!("the weather is {weather}"), str::to_owned)
    });
    let period =
        (!period.is_empty()).then(
            || match (&season, lookup(rules::SEASONED_PERIODS, &period)) {
                (Some(season), Some(p)) => p.replace("{season}", season),
                _ => lookup(rules::PERIODS, &period)
                    .map_or_else(|| format!("in the {period}"), str::to_owned),
            },
        );
    match (weather, period) {
        (Some(w), Some(p)) => Some(format!("{w} {p}")),
        (Some(w), None) => Some(match season {
            Some(season) => format!("{w} in {season}"),
            None => w,
        }),
        (None, Some(p)) => Some(
            match (
                &season,
                lookup(rules::PERIODS, &g.period.trim().to_lowercase()),
            ) {
                // "it is a winter evening", not "it is on a winter evening".
                (Some(season), Some(_)) => {
                    format!("it is a {season} {}", g.period.trim().to_lowercase())
                }
                _ => format!("it is {p}"),
            },
        ),
        (None, None) => season.map(|season| format!("it is {season}")),
    }
}

/// Fills a rule's slots. `None` if the rule needs a word the grounding lacks.
fn fill(rule: &str, g: &Grounding) -> Option<String> {
    if rule.is_empty() {
        return None;
    }
    let moment = moment(g);
    let mood = g.mood.trim().to_lowercase();
    let manner =
        lookup(rules::MOODS, &mood).map_or_else(|| format!("with a {mood} look"), str::to_owned);
    let mut out = rule.to_owned();
    for (slot, value) in [
        (
            "place",
            Some(g.place.trim().to_owned()).filter(|s| !s.is_empty()),
        ),
        (
            "speaker",
            Some(g.speaker.trim().to_owned()).filter(|s| !s.is_empty()),
        ),
        ("moment", moment),
        ("mood", (!mood.is_empty()).then_some(manner)),
    ] {
        let lower = format!("{{{slot}}}");
        let upper = format!("{{{}}}", capitalize(slot));
        if !out.contains(&lower) && !out.contains(&upper) {
            continue;
        }
        let value = value?;
        out = out
            .replace(&upper, &capitalize(&value))
            .replace(&lower, &value);
    }
    // A greeting with no mood word still reads: "turns to you."
    Some(out.replace("  ", " ").replace(" .", "."))
}

/// The reply's sentences: composed from `g` alone (see the module's doc). `question` picks an
/// answer's register; `at_length` goes on, round the fragments, until `min_words` words.
pub fn compose(
    g: &Grounding,
    rng: &mut SplitMix,
    question: bool,
    at_length: bool,
    min_words: usize,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if is_empty(g) {
        for choices in rules::UNGROUNDED {
            out.push(pick(rng, choices).to_owned());
        }
        while at_length && words(&out) <= min_words {
            out.push(pick(rng, rules::UNGROUNDED_MORE).to_owned());
        }
        return out;
    }
    let speaking = !g.speaker.trim().is_empty();
    let opening = if speaking {
        // A greeting with no mood is still a greeting.
        let rule = pick(rng, rules::GREETINGS);
        if g.mood.trim().is_empty() {
            fill(&rule.replace(" {mood}", ""), g)
        } else {
            fill(rule, g)
        }
    } else if moment(g).is_some() {
        fill(pick(rng, rules::OPENINGS), g)
    } else {
        fill(pick(rng, rules::OPENINGS_BARE), g)
    };
    out.extend(opening);
    if speaking && !g.place.trim().is_empty() && moment(g).is_some() {
        out.extend(fill(pick(rng, rules::OPENINGS), g));
    }
    if question {
        out.push(pick(rng, rules::HEDGES).to_owned());
    }
    // The first fragment (the most relevant) always; then up to two more, in the seed's order.
    // A phrase (a title) ends as a sentence does, so the next one does not run into it.
    // Retrieved lore is spoken as fragments are, after them.
    let frags: Vec<String> = g
        .fragments
        .iter()
        .chain(g.lore.iter().map(|p| &p.text))
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(|f| {
            if f.ends_with(['.', '!', '?', '"', '\u{201d}']) {
                f.to_owned()
            } else {
                format!("{f}.")
            }
        })
        .collect();
    let mut order: Vec<usize> = (1..frags.len()).collect();
    for i in (1..order.len()).rev() {
        let j = usize::try_from(rng.next_u64() % u64::try_from(i + 1).unwrap_or(1)).unwrap_or(0);
        order.swap(i, j);
    }
    let mut chosen: Vec<usize> = frags.first().map(|_| 0).into_iter().collect();
    chosen.extend(order.iter().take(2));
    for (n, i) in chosen.iter().enumerate() {
        if n > 0 && rng.next_u64().is_multiple_of(3) {
            out.push(pick(rng, rules::LINKS).to_owned());
        }
        out.push(frags[*i].clone());
    }
    let last = pick(
        rng,
        if speaking {
            rules::PARTINGS
        } else {
            rules::CLOSINGS
        },
    );
    if !last.is_empty() {
        out.push(last.to_owned());
    }
    if at_length {
        // Round the fragments (or the moment) again, with links between, until long enough.
        let mut again = frags.clone();
        if again.is_empty() {
            again.extend(fill(pick(rng, rules::OPENINGS), g));
            again.extend(fill(pick(rng, rules::OPENINGS_BARE), g));
        }
        let mut k = 0;
        while !again.is_empty() && words(&out) <= min_words {
            out.push(pick(rng, rules::LINKS).to_owned());
            out.push(again[k % again.len()].clone());
            k += 1;
        }
    }
    out
}

fn words(sentences: &[String]) -> usize {
    sentences.iter().map(|s| s.split_whitespace().count()).sum()
}
