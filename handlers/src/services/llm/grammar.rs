//! The `grammar` provider: procedural text from weighted grammar rules, seeded, so the same seed
//! and prompt give the same text on every machine and version. It is not a language model: it
//! does not read the prompt beyond mixing it into the seed and picking a register (a question gets
//! an answer-like reply). It exists so `edge` streams tokens out of the box, with no network, for
//! development, tests and benchmarks.

/// A weighted alternative: its weight and its expansion. `<name>` refers to another rule; anything
/// else is literal text.
type Alternative = (u32, &'static str);

/// The rules. `reply` and `answer` are the start symbols.
const RULES: &[(&str, &[Alternative])] = &[
    (
        "reply",
        &[
            (3, "<greeting> <line> <line>"),
            (2, "<line> <line> <farewell>"),
            (1, "<line> <line> <line>"),
        ],
    ),
    (
        "answer",
        &[(3, "<hedge> <line> <line>"), (1, "<line> <hedge> <line>")],
    ),
    (
        "greeting",
        &[
            (2, "Well met, traveler."),
            (1, "Ah, another face at the gate."),
            (1, "Greetings, friend."),
        ],
    ),
    (
        "farewell",
        &[
            (2, "Safe roads to you."),
            (1, "Mind the wolves after dusk."),
            (1, "Come back when the bells ring."),
        ],
    ),
    (
        "hedge",
        &[
            (2, "Hard to say, but"),
            (1, "If the old tales are true,"),
            (1, "Between you and me,"),
        ],
    ),
    (
        "line",
        &[
            (3, "the <place> <verb> <when>."),
            (2, "<person> says the <place> <verb> <when>."),
            (2, "I heard <rumor>."),
            (1, "the <weather> came early this year, and <rumor>."),
        ],
    ),
    (
        "place",
        &[
            (2, "old mill"),
            (2, "northern pass"),
            (1, "sunken chapel"),
            (1, "harbor market"),
            (1, "watchtower"),
        ],
    ),
    (
        "verb",
        &[
            (2, "stands empty"),
            (2, "is full of strangers"),
            (1, "hums with strange light"),
            (1, "was locked by the guard"),
        ],
    ),
    (
        "when",
        &[
            (2, "since the last moon"),
            (1, "every night"),
            (1, "after the storm"),
            (1, "these days"),
        ],
    ),
    (
        "person",
        &[
            (2, "the blacksmith"),
            (1, "old Marta"),
            (1, "the ferryman"),
            (1, "a priest from the coast"),
        ],
    ),
    (
        "rumor",
        &[
            (2, "a dragon sleeps under the <place>"),
            (1, "the king pays gold for wolf pelts"),
            (1, "<person> hides a map in the <place>"),
        ],
    ),
    (
        "weather",
        &[(2, "frost"), (1, "fog"), (1, "rain from the west")],
    ),
];

/// SplitMix64: tiny, and fixed forever, unlike a library RNG whose stream may change with a
/// version bump (the same seed must give the same text).
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// FNV-1a: a stable hash of the prompt to mix into the seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn rule(name: &str) -> &'static [Alternative] {
    RULES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, alts)| *alts)
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The grammar's text ended.
    Stop,
    /// `max_tokens` were produced.
    Length,
}

impl Finish {
    /// The OpenAI-style name.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Generates the reply to `prompt` with `seed`: the tokens (words, each but the first with its
/// leading space) and why it ended. At most `max_tokens` tokens. A prompt that asks for it "at
/// length" gets a tale that goes on until `max_tokens` (for long streams in demos and benchmarks).
pub fn generate(seed: u64, prompt: &str, max_tokens: usize) -> (Vec<String>, Finish) {
    let mut rng = SplitMix(seed ^ fnv(prompt));
    let start = if prompt.trim_end().ends_with('?') {
        "answer"
    } else {
        "reply"
    };
    let mut words = Vec::new();
    expand(start, &mut rng, &mut words, 0);
    if prompt.to_lowercase().contains("at length") {
        while words.len() <= max_tokens {
            expand("line", &mut rng, &mut words, 0);
        }
    }
    let finish = if words.len() > max_tokens {
        words.truncate(max_tokens);
        Finish::Length
    } else {
        Finish::Stop
    };
    let mut sentence_start = true;
    let tokens = words
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let word = if sentence_start { capitalize(&w) } else { w };
            sentence_start = word.ends_with(['.', '?', '!']);
            if i == 0 { word } else { format!(" {word}") }
        })
        .collect();
    (tokens, finish)
}

/// The `grammar` provider: [`generate`] for the last user message, token by token, with an
/// optional pause between tokens (to look like a model in demos and to test slow streams).
#[derive(Debug, Clone, Default)]
pub struct GrammarProvider {
    /// Pause between tokens; zero streams as fast as the reader reads.
    pub token_interval: std::time::Duration,
}

/// Cuts `tokens` where any of `stops` first appears in their text; true if it did.
fn apply_stops(tokens: &mut Vec<String>, stops: &[String]) -> bool {
    if stops.is_empty() {
        return false;
    }
    let mut text = String::new();
    let mut found = None;
    for token in tokens.iter() {
        text.push_str(token);
        found = stops.iter().filter_map(|s| text.find(s.as_str())).min();
        if found.is_some() {
            break;
        }
    }
    let Some(at) = found else {
        return false;
    };
    // Keep the text before the stop sequence (it may begin in an earlier token).
    let mut left = at;
    let mut kept = Vec::new();
    for t in tokens.drain(..) {
        if left == 0 {
            break;
        }
        let n = t.len().min(left);
        left -= n;
        kept.push(t.get(..n).unwrap_or_default().to_owned());
    }
    *tokens = kept;
    true
}

#[async_trait::async_trait]
impl super::Provider for GrammarProvider {
    async fn start(
        &self,
        _model: &proto::aicore::models::v1::Model,
        req: &proto::aicore::llm::v1::InferRequest,
        _ctx: &crate::kit::context::Context,
    ) -> Result<super::Pieces, crate::kit::status::Status> {
        use futures_util::StreamExt as _;
        let prompt = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or(req.messages.last())
            .map_or("", |m| m.content.as_str());
        let seed = req.seed.unwrap_or_else(rand::random);
        let max = usize::try_from(super::max_tokens(req)).unwrap_or(usize::MAX);
        let (mut tokens, finish) = generate(seed, prompt, max);
        let finish = if apply_stops(&mut tokens, &req.stop) {
            Finish::Stop
        } else {
            finish
        };
        let end = super::Piece::End {
            finish: finish.as_str().to_owned(),
            usage: None,
        };
        let pieces = futures_util::stream::iter(
            tokens
                .into_iter()
                .map(super::Piece::Text)
                .chain(std::iter::once(end))
                .map(Ok),
        );
        let interval = self.token_interval;
        if interval.is_zero() {
            return Ok(Box::pin(pieces));
        }
        // The first token comes at once; each later one after the interval.
        let mut first = true;
        Ok(Box::pin(pieces.then(move |p| {
            let wait = !std::mem::take(&mut first);
            async move {
                if wait {
                    tokio::time::sleep(interval).await;
                }
                p
            }
        })))
    }
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn expand(name: &str, rng: &mut SplitMix, out: &mut Vec<String>, depth: usize) {
    let alts = rule(name);
    let total: u32 = alts.iter().map(|(w, _)| w).sum();
    if total == 0 || depth > 8 {
        return;
    }
    let mut pick = u32::try_from(rng.next() % u64::from(total)).unwrap_or(0);
    let Some((_, text)) = alts.iter().find(|(w, _)| {
        if pick < *w {
            true
        } else {
            pick -= w;
            false
        }
    }) else {
        return;
    };
    for part in text.split(' ') {
        match part.strip_prefix('<').and_then(|p| p.split_once('>')) {
            Some((sym, rest)) => {
                expand(sym, rng, out, depth + 1);
                // Punctuation glued to a symbol ("<when>.") sticks to the last word.
                if !rest.is_empty()
                    && let Some(last) = out.last_mut()
                {
                    last.push_str(rest);
                }
            }
            None => out.push(part.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_prompt_give_the_same_text() {
        let (a, fa) = generate(42, "Tell me about the village.", 1000);
        let (b, fb) = generate(42, "Tell me about the village.", 1000);
        assert_eq!((a.clone(), fa), (b, fb));
        assert_eq!(fa, Finish::Stop);
        let text: String = a.concat();
        assert!(text.len() > 20 && text.ends_with('.'), "{text}");
        assert!(!text.contains('<') && !text.contains("  "), "{text}");
        let others: Vec<String> = (0..20)
            .map(|s| generate(s, "hi", 1000).0.concat())
            .collect();
        let distinct: std::collections::HashSet<_> = others.iter().collect();
        assert!(distinct.len() > 10, "seeds vary the text");
    }

    #[test]
    fn at_length_goes_on_to_max_tokens() {
        let (tokens, finish) = generate(11, "Tell me of the north, at length.", 500);
        assert_eq!(tokens.len(), 500);
        assert_eq!(finish, Finish::Length);
        let (short, finish) = generate(11, "Tell me of the north.", 500);
        assert!(short.len() < 100);
        assert_eq!(finish, Finish::Stop);
    }

    #[test]
    fn max_tokens_cuts_with_length() {
        let (t, f) = generate(7, "hello", 3);
        assert_eq!((t.len(), f), (3, Finish::Length));
        assert!(!t[0].starts_with(' ') && t[1].starts_with(' '));
    }

    #[test]
    fn stop_sequences_cut_the_text() {
        let mut t: Vec<String> = ["The", " old", " mill.", " Then"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert!(apply_stops(&mut t, &["mill".into()]));
        assert_eq!(t.concat(), "The old ");
        let mut t = vec!["ab".to_owned(), "cd".to_owned()];
        assert!(!apply_stops(&mut t, &["x".into()]));
        assert!(apply_stops(&mut t, &["ab".into()]));
        assert!(t.is_empty());
        let mut t = vec!["The".to_owned(), " old".to_owned(), " mill".to_owned()];
        assert!(apply_stops(&mut t, &["old mi".into()]));
        assert_eq!(t.concat(), "The ");
    }

    #[test]
    fn a_fixed_seed_is_stable_across_versions() {
        // Pinned: if this changes, every recorded transcript and test fixture changes with it.
        let (t, _) = generate(1, "What is in the north?", 1000);
        assert_eq!(
            t.concat(),
            "If the old tales are true, the sunken chapel is full of strangers since the last moon. \
             The sunken chapel is full of strangers these days."
        );
        let mut rng = SplitMix(1);
        assert_eq!(rng.next(), 0x910a_2dec_8902_5cc1);
    }
}
