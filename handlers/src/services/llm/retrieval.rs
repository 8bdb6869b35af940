//! Lore for a prompt: passages of kb documents that fit a request, cut to a budget of tokens.
//! Story's Narrate and npc's Talk rank documents with kb Search (on the cue, the region, the people
//! in it) and cut them here; the passages travel in the grounding's `lore`, which a real model gets
//! under a "Lore" heading and the built-in model speaks from. Tokens are counted as the llm meter
//! counts a prompt ([`super::estimate_tokens`] of the rendered line), so the budget is what the
//! player is charged for the lore, at most.

use proto::aicore::kb::v1::Document;
use proto::aicore::llm::v1::LorePassage;

use super::grounded::{MAX_FRAGMENT, sentences, words_of};
pub use super::grounded::{MAX_PASSAGES, MAX_TITLE, lore_line as line};

/// Tokens of lore in one prompt when the operator sets none: a few hundred.
pub const DEFAULT_BUDGET: u32 = 300;
/// The largest budget an operator may set.
pub const MAX_BUDGET: u32 = 4000;
/// The longest query sent to kb Search (which takes at most 500 characters).
pub const MAX_QUERY: usize = 480;
/// Least room, in tokens, worth filling with the head of a passage that does not fit whole.
const MIN_PART: u32 = 24;

/// What a passage costs in the prompt, in the meter's tokens.
pub fn cost(p: &LorePassage) -> u32 {
    super::estimate_tokens(&line(p))
}

/// What all of `passages` cost.
pub fn total_cost(passages: &[LorePassage]) -> u32 {
    passages.iter().map(cost).fold(0, u32::saturating_add)
}

/// A search query from `parts`, the most telling first, joined and cut at a word to
/// [`MAX_QUERY`] characters: a long cue or story never makes kb refuse the search.
pub fn query(parts: &[&str]) -> String {
    let mut out = String::new();
    for word in parts.iter().flat_map(|p| p.split_whitespace()) {
        let len = out.chars().count() + word.chars().count() + 1;
        if len > MAX_QUERY {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// At most `max` characters of `text`: whole sentences while they fit, else cut at a word.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    for s in sentences(text) {
        let len = out.chars().count() + s.chars().count() + 1;
        if len > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        let head: String = text.chars().take(max).collect();
        out = head
            .rfind(' ')
            .map_or(head.as_str(), |i| &head[..i])
            .to_owned();
    }
    out
}

/// The paragraph of `body` (paragraphs are split by blank lines) sharing most words of four
/// letters or more with `query`, the earliest on a tie, at most [`MAX_FRAGMENT`] characters.
pub fn best_paragraph(body: &str, query: &str) -> Option<String> {
    let wanted = words_of(query);
    let mut best: Option<(usize, &str)> = None;
    for p in body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let score = words_of(p).iter().filter(|w| wanted.contains(w)).count();
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, p));
        }
    }
    let text = clip(best?.1, MAX_FRAGMENT);
    (!text.trim().is_empty()).then_some(text)
}

/// The passages of `docs` (ranked, the best first) for `query`, within `budget` tokens, in rank
/// order. Whole passages first: each that fits is taken, one that does not is passed over for
/// the next; then the room left, if worth it, takes the first sentences of the best passage passed
/// over. A document gives one passage.
pub fn within_budget(docs: &[Document], query: &str, budget: u32) -> Vec<LorePassage> {
    let mut left = budget;
    let mut kept: Vec<(usize, LorePassage)> = Vec::new();
    let mut passed: Option<(usize, LorePassage)> = None;
    for (rank, d) in docs.iter().enumerate() {
        if kept.len() >= MAX_PASSAGES {
            break;
        }
        if kept.iter().any(|(_, p)| p.document == d.id) {
            continue;
        }
        let Some(text) = best_paragraph(&d.body, query) else {
            continue;
        };
        let p = LorePassage {
            document: d.id.clone(),
            title: clip(d.title.trim(), MAX_TITLE),
            text,
        };
        let c = cost(&p);
        if c <= left {
            left -= c;
            kept.push((rank, p));
        } else if passed.is_none() {
            passed = Some((rank, p));
        }
    }
    if let Some((rank, mut p)) = passed
        && left >= MIN_PART
        && kept.len() < MAX_PASSAGES
    {
        let mut head = String::new();
        for s in sentences(&p.text) {
            let next = if head.is_empty() {
                s.to_owned()
            } else {
                format!("{head} {s}")
            };
            let trial = LorePassage {
                text: next.clone(),
                ..p.clone()
            };
            if cost(&trial) > left {
                break;
            }
            head = next;
        }
        if !head.is_empty() {
            p.text = head;
            kept.push((rank, p));
        }
    }
    kept.sort_by_key(|(rank, _)| *rank);
    kept.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn doc(id: &str, body: &str) -> Document {
        Document {
            id: id.into(),
            title: format!("Of {id}"),
            body: body.into(),
            ..Document::default()
        }
    }

    #[test]
    fn the_best_paragraph_is_the_one_that_shares_most_words() {
        let body = "Bells ring in Hearth.\n\nThe drowned abbey keeps its bell under the fen. \
                    Nobody rows there.\n\nEels.";
        assert_eq!(
            best_paragraph(body, "a bell beneath the drowned abbey").unwrap(),
            "The drowned abbey keeps its bell under the fen. Nobody rows there."
        );
        assert_eq!(
            best_paragraph(body, "nothing shared").unwrap(),
            "Bells ring in Hearth."
        );
        assert!(best_paragraph("", "x").is_none());
        let long = "A word. ".repeat(400);
        assert!(best_paragraph(&long, "word").unwrap().chars().count() <= MAX_FRAGMENT);
    }

    #[test]
    fn passages_are_cut_to_the_budget_whole_passages_first() {
        let big = "Long lore about the abbey. ".repeat(30);
        let docs = [
            doc("a", "Short lore of the abbey."),
            doc("b", &big),
            doc("c", "Another short passage on the abbey bell."),
        ];
        // Room for both short passages whole and the head of the long one.
        let budget = 80;
        let got = within_budget(&docs, "abbey", budget);
        let ids: Vec<&str> = got.iter().map(|p| p.document.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "rank order kept");
        assert!(total_cost(&got) <= budget);
        assert!(got[1].text.len() < big.len() && got[1].text.ends_with('.'));
        // A small budget keeps whole passages only and passes over the long one.
        let got = within_budget(&docs, "abbey", 25);
        let ids: Vec<&str> = got.iter().map(|p| p.document.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(within_budget(&docs, "abbey", 0).is_empty());
        // However many documents, at most MAX_PASSAGES.
        let many: Vec<Document> = (0..20).map(|i| doc(&format!("d{i}"), "Tiny.")).collect();
        assert_eq!(within_budget(&many, "", 10_000).len(), MAX_PASSAGES);
    }

    #[test]
    fn a_query_is_cut_at_a_word() {
        let cue = "lantern ".repeat(200);
        let q = query(&[&cue, "the bell"]);
        assert!(q.chars().count() <= MAX_QUERY);
        assert!(q.ends_with("lantern"));
        assert_eq!(query(&["  a  b ", "c"]), "a b c");
    }
}
