//! The `grammar` provider: text composed from the request's grounding (see [`super::grounded`]),
//! seeded, so the same seed and request give the same text on every machine and version. It is not
//! a language model: it speaks only from what the request gives it, and reads the prompt only to
//! mix it into the seed and to pick a register (a question gets an answer-like reply). It exists so
//! `edge` streams tokens out of the box, with no network, for development, tests, demos and
//! benchmarks.

use proto::aicore::llm::v1::Grounding;

use super::grounded::SplitMix;

/// FNV-1a: a stable hash of the prompt to mix into the seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

/// Generates the reply to `prompt` from `grounding` with `seed`: the tokens (words, each but the
/// first with its leading space) and why it ended. At most `max_tokens` tokens. A prompt that asks
/// for it "at length" goes on until `max_tokens` (for long streams in demos and benchmarks).
pub fn generate(
    seed: u64,
    prompt: &str,
    grounding: &Grounding,
    max_tokens: usize,
) -> (Vec<String>, Finish) {
    let mut rng = SplitMix(seed ^ fnv(prompt));
    let question = prompt.trim_end().ends_with('?');
    let at_length = prompt.to_lowercase().contains("at length");
    let sentences = super::grounded::compose(grounding, &mut rng, question, at_length, max_tokens);
    let mut words: Vec<&str> = sentences
        .iter()
        .flat_map(|s| s.split_whitespace())
        .collect();
    let finish = if words.len() > max_tokens {
        words.truncate(max_tokens);
        Finish::Length
    } else {
        Finish::Stop
    };
    let tokens = words
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_owned()
            } else {
                format!(" {w}")
            }
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
        let grounding = req.grounding.clone().unwrap_or_default();
        let (mut tokens, finish) = generate(seed, prompt, &grounding, max);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ungrounded() -> Grounding {
        Grounding::default()
    }

    fn ashfen() -> Grounding {
        Grounding {
            place: "Ashfen Marsh".into(),
            fragments: vec![
                "Fog lies thick over Ashfen Marsh when a bell begins to toll.".into(),
                "Black water, reed islands and the drowned abbey of Saint Wren.".into(),
                "Lantern-lights drift over the fen at night; do not follow them.".into(),
                "The Drowned Bell".into(),
            ],
            weather: "fog".into(),
            period: "evening".into(),
            ..Default::default()
        }
    }

    #[test]
    fn without_grounding_it_says_what_it_is_and_names_nothing() {
        let (t, f) = generate(3, "Where is the mill?", &ungrounded(), 1000);
        let text = t.concat();
        assert_eq!(f, Finish::Stop);
        assert!(
            text.contains("not a language model") || text.contains("no language model"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("mill"), "{text}");
    }

    #[test]
    fn grounded_text_is_made_of_the_grounding_and_name_free_rules() {
        let g = ashfen();
        for seed in 0..200 {
            for prompt in ["hi", "What now?"] {
                let text = generate(seed, prompt, &g, 1000).0.concat();
                assert!(text.contains("Ashfen Marsh"), "{text}");
                let mut rest = text.clone();
                for f in &g.fragments {
                    rest = rest.replace(f.as_str(), "");
                }
                rest = rest.replace("Ashfen Marsh", "");
                // What is left is the rules' own words: no capital but at a sentence's start.
                for w in super::super::grounded::sentences(&rest)
                    .iter()
                    .flat_map(|s| s.split_whitespace().skip(1))
                {
                    assert!(
                        w == "I" || !w.starts_with(char::is_uppercase),
                        "{w:?} in {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_rules_name_no_one_and_nowhere() {
        use super::super::grounded::rules;
        let pairs: Vec<&str> = rules::WEATHER
            .iter()
            .chain(rules::PERIODS)
            .chain(rules::MOODS)
            .map(|(_, v)| *v)
            .collect();
        let all = [
            rules::OPENINGS,
            rules::OPENINGS_BARE,
            rules::GREETINGS,
            rules::LINKS,
            rules::CLOSINGS,
            rules::PARTINGS,
            rules::HEDGES,
            &rules::UNGROUNDED.concat(),
            rules::UNGROUNDED_MORE,
            &pairs,
        ];
        for rule in all.iter().flat_map(|r| r.iter()) {
            for sentence in super::super::grounded::sentences(rule) {
                for w in sentence.split_whitespace().skip(1) {
                    let w = w.trim_start_matches('{');
                    assert!(
                        w == "I" || !w.starts_with(char::is_uppercase),
                        "{w:?} in the rule {rule:?} looks like a name"
                    );
                }
            }
        }
    }

    #[test]
    fn the_same_seed_and_prompt_give_the_same_text() {
        let (a, fa) = generate(42, "Tell me about the village.", &ungrounded(), 1000);
        let (b, fb) = generate(42, "Tell me about the village.", &ungrounded(), 1000);
        assert_eq!((a.clone(), fa), (b, fb));
        assert_eq!(fa, Finish::Stop);
        let text: String = a.concat();
        assert!(text.len() > 20 && text.ends_with('.'), "{text}");
        assert!(!text.contains('<') && !text.contains("  "), "{text}");
        let others: Vec<String> = (0..20)
            .map(|s| generate(s, "hi", &ashfen(), 1000).0.concat())
            .collect();
        let distinct: std::collections::HashSet<_> = others.iter().collect();
        assert!(distinct.len() > 10, "seeds vary the text");
    }

    #[test]
    fn at_length_goes_on_to_max_tokens() {
        let (tokens, finish) = generate(11, "Tell me of the north, at length.", &ungrounded(), 500);
        assert_eq!(tokens.len(), 500);
        assert_eq!(finish, Finish::Length);
        let (short, finish) = generate(11, "Tell me of the north.", &ungrounded(), 500);
        assert!(short.len() < 100);
        assert_eq!(finish, Finish::Stop);
    }

    #[test]
    fn max_tokens_cuts_with_length() {
        let (t, f) = generate(7, "hello", &ungrounded(), 3);
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
        let (t, _) = generate(1, "What is in the north?", &ashfen(), 1000);
        assert_eq!(
            t.concat(),
            "You are in Ashfen Marsh; fog lies close in the evening. Hard to say, but this much is \
             plain. Fog lies thick over Ashfen Marsh when a bell begins to toll. The Drowned Bell. \
             Lantern-lights drift over the fen at night; do not follow them."
        );
        let mut rng = SplitMix(1);
        assert_eq!(rng.next_u64(), 0x910a_2dec_8902_5cc1);
    }
}
