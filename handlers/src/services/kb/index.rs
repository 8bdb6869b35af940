//! The ranked full-text index over the lore: BM25 (k1 = 1.2, b = 0.75) with the title weighing
//! [`TITLE_WEIGHT`] times the body, as one field (a title term counts that many times in the term
//! frequency and in the document's length). The inverse document frequency is the non-negative
//! form `ln(1 + (N - n + 0.5) / (n + 0.5))`.
//!
//! Tokens: Unicode words, lowercased, accents folded (`Éloi` is `eloi`, `Weißfeuer` is
//! `weissfeuer`), and each CJK character a token of its own. Any input tokenizes; none panics.

use std::collections::{HashMap, HashSet};

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// BM25's term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25's length normalisation.
pub const B: f64 = 0.75;
/// A title term counts this many times.
pub const TITLE_WEIGHT: u32 = 3;
/// Distinct query terms scored; the rest of a long query is ignored.
pub const MAX_QUERY_TERMS: usize = 32;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF)
}

/// The tokens of `text`, in order.
pub fn tokenize(text: &str) -> Vec<String> {
    tokens_at(text).into_iter().map(|(_, t)| t).collect()
}

/// The tokens of `text`, in order, each with the byte offset where it starts.
pub fn tokens_at(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let flush = |word: &mut String, start: usize, out: &mut Vec<(usize, String)>| {
        if !word.is_empty() {
            out.push((start, std::mem::take(word)));
        }
    };
    for (at, c) in text.char_indices() {
        if is_cjk(c) {
            flush(&mut word, start, &mut out);
            out.push((at, c.to_string()));
            continue;
        }
        if !c.is_alphanumeric() {
            flush(&mut word, start, &mut out);
            continue;
        }
        if word.is_empty() {
            start = at;
        }
        for l in c.to_lowercase() {
            match l {
                'ß' => word.push_str("ss"),
                'æ' => word.push_str("ae"),
                'œ' => word.push_str("oe"),
                'ø' => word.push('o'),
                'đ' | 'ð' => word.push('d'),
                'þ' => word.push_str("th"),
                'ł' => word.push('l'),
                _ => word.extend(std::iter::once(l).nfd().filter(|d| !is_combining_mark(*d))),
            }
        }
        if word.len() > 64 {
            flush(&mut word, start, &mut out);
        }
    }
    flush(&mut word, start, &mut out);
    out
}

/// One indexed document.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id.
    pub id: String,
    /// Title, as shown.
    pub title: String,
    /// Body, for snippets.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The store version it was indexed at.
    pub version: u64,
    /// Weighted length (title tokens count [`TITLE_WEIGHT`] times).
    len: u32,
    /// Its distinct terms (ids), to take it out again.
    terms: Vec<u32>,
}

/// One document holding a term.
#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    /// Weighted term frequency.
    tf: u32,
    /// Byte offset of its first occurrence in the body ([`NOT_IN_BODY`] if only in the title),
    /// where the snippet is cut.
    first: u32,
}

/// Per term, what bounds its share of any document's score: the largest term frequency and the
/// shortest document among its postings (a share grows with the one, shrinks with the other).
/// Always exact: on removal recomputed when the removed posting held either.
#[derive(Debug, Clone, Copy)]
struct Bound {
    max_tf: u32,
    min_len: u32,
}

const NOT_IN_BODY: u32 = u32::MAX;

/// Relative slack on the pruning cut: a partial sum compared with a bound may differ from the
/// full sum in the last bits, and a document on the edge must be kept, not lost.
const SLACK: f64 = 1e-9;

/// A scored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Slot of the entry.
    pub slot: u32,
    /// BM25 score.
    pub score: f64,
    /// Byte offset in the body of the first query term it holds, if any.
    pub first: Option<usize>,
}

/// The index.
#[derive(Debug, Default)]
pub struct Index {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    terms: HashMap<Box<str>, u32>,
    /// Per term id: the documents that hold it.
    postings: Vec<Vec<Posting>>,
    /// Per term id: the bound on its share of a score.
    bounds: Vec<Bound>,
    /// Weighted length by slot (0 for a free slot): the scoring loop reads only this.
    lens: Vec<u32>,
    docs: u32,
    total_len: u64,
}

/// A query term known to the index.
#[derive(Debug, Clone, Copy)]
struct QueryTerm {
    id: u32,
    idf: f64,
    /// The most it can add to any document's score.
    bound: f64,
}

thread_local! {
    /// Per-thread score and first-offset accumulators, kept between searches and cleared by
    /// the search that used them, so a search touches only its postings' slots.
    static ACC: std::cell::RefCell<(Vec<f64>, Vec<u32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// BM25's share of one term in one document (`norm` holds the length normalisation).
fn share(idf: f64, tf: u32, norm: f64) -> f64 {
    let tf = f64::from(tf);
    idf * tf * (K1 + 1.0) / (tf + norm)
}

/// The `k`-th largest of `values` (`k` >= 1, `values.len()` >= `k`).
fn kth_largest(values: impl Iterator<Item = f64>, k: usize, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(values);
    let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    *kth
}

impl Index {
    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.docs as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }

    /// The entry in `slot`.
    pub fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The entry of document `id`.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).and_then(|s| self.entry(*s))
    }

    /// Adds or replaces a document (a version older than the one indexed is ignored).
    pub fn upsert(&mut self, id: &str, title: &str, body: &str, tags: &[String], version: u64) {
        if self.get(id).is_some_and(|e| e.version > version) {
            return;
        }
        self.remove(id);
        let mut tf: HashMap<String, (u32, u32)> = HashMap::new();
        let mut len = 0u32;
        for t in tokenize(title) {
            tf.entry(t).or_insert((0, NOT_IN_BODY)).0 += TITLE_WEIGHT;
            len += TITLE_WEIGHT;
        }
        for (at, t) in tokens_at(body) {
            let e = tf.entry(t).or_insert((0, NOT_IN_BODY));
            e.0 += 1;
            e.1 = e.1.min(u32::try_from(at).unwrap_or(NOT_IN_BODY - 1));
            len += 1;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.lens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.lens[slot as usize] = len;
        let mut terms = Vec::with_capacity(tf.len());
        for (term, (n, first)) in tf {
            let next = self.postings.len() as u32;
            let id = *self.terms.entry(term.into_boxed_str()).or_insert(next);
            if id == next {
                self.postings.push(Vec::new());
                self.bounds.push(Bound {
                    max_tf: 0,
                    min_len: u32::MAX,
                });
            }
            self.postings[id as usize].push(Posting { slot, tf: n, first });
            let bound = &mut self.bounds[id as usize];
            bound.max_tf = bound.max_tf.max(n);
            bound.min_len = bound.min_len.min(len);
            terms.push(id);
        }
        self.slots[slot as usize] = Some(Entry {
            id: id.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            tags: tags.to_vec(),
            version,
            len,
            terms,
        });
        self.by_id.insert(id.to_owned(), slot);
        self.docs += 1;
        self.total_len += u64::from(len);
    }

    /// Takes a document out; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        let Some(entry) = self.slots[slot as usize].take() else {
            return false;
        };
        for t in &entry.terms {
            let list = &mut self.postings[*t as usize];
            let Some(i) = list.iter().position(|p| p.slot == slot) else {
                continue;
            };
            let gone = list.swap_remove(i);
            let bound = &mut self.bounds[*t as usize];
            if gone.tf >= bound.max_tf || entry.len <= bound.min_len {
                bound.max_tf = list.iter().map(|p| p.tf).max().unwrap_or(0);
                bound.min_len = list
                    .iter()
                    .map(|p| self.lens[p.slot as usize])
                    .min()
                    .unwrap_or(u32::MAX);
            }
        }
        self.free.push(slot);
        self.lens[slot as usize] = 0;
        self.docs -= 1;
        self.total_len -= u64::from(entry.len);
        true
    }

    /// The documents matching any term of `query` and carrying every tag of `tags`, best
    /// first (ties by id), at most `limit`.
    ///
    /// Terms are scored in the order of their bound, largest first (MaxScore). Once the bounds
    /// of the terms left add up to less than the `limit`-th best score so far, no document
    /// untouched yet can reach the top: the terms left only add to the documents already in the
    /// running, which skips most of their postings' work. Scores are the sum of the terms' shares
    /// in that order, whether pruned or not (`tests.rs` holds the result to scoring every
    /// document).
    pub fn search(&self, query: &str, tags: &[String], limit: usize) -> Vec<Scored> {
        if limit == 0 {
            return Vec::new();
        }
        let n = f64::from(self.docs.max(1));
        let avg = self.total_len as f64 / n;
        let per_len = K1 * B / avg;
        let base = K1 * (1.0 - B);
        let mut order = self.query_terms(query, n, base, per_len);
        // Stable: equal bounds keep query order.
        order.sort_by(|a, b| b.bound.total_cmp(&a.bound));
        // rest[i]: the most the terms from order[i] on can add.
        let mut rest = vec![0.0; order.len() + 1];
        for i in (0..order.len()).rev() {
            rest[i] = rest[i + 1] + order[i].bound;
        }
        let prune = tags.is_empty();
        let mut touched: Vec<u32> = Vec::new();
        let mut scratch: Vec<f64> = Vec::new();
        let mut candidates: Vec<Scored> = Vec::new();
        ACC.with(|acc| {
            let mut acc = acc.borrow_mut();
            let (scores, first) = &mut *acc;
            if scores.len() < self.slots.len() {
                scores.resize(self.slots.len(), 0.0);
                first.resize(self.slots.len(), NOT_IN_BODY);
            }
            // Whether documents not yet touched can still reach the top.
            let mut open = true;
            for (i, t) in order.iter().enumerate() {
                if open && prune && i > 0 && touched.len() >= limit {
                    let cut = kth_largest(
                        touched.iter().map(|s| scores[*s as usize]),
                        limit,
                        &mut scratch,
                    );
                    open = rest[i] >= cut * (1.0 - SLACK);
                }
                let list = &self.postings[t.id as usize];
                if open {
                    for p in list {
                        let s = p.slot as usize;
                        if scores[s] == 0.0 {
                            touched.push(p.slot);
                        }
                        let norm = base + per_len * f64::from(self.lens[s]);
                        scores[s] += share(t.idf, p.tf, norm);
                        first[s] = first[s].min(p.first);
                    }
                } else {
                    // Only the documents already in the running: no new ones, and most
                    // postings cost one load.
                    for p in list {
                        let s = p.slot as usize;
                        if scores[s] != 0.0 {
                            let norm = base + per_len * f64::from(self.lens[s]);
                            scores[s] += share(t.idf, p.tf, norm);
                            first[s] = first[s].min(p.first);
                        }
                    }
                }
            }
            // Every touched document carrying the tags, clearing as it goes.
            for &slot in &touched {
                let i = slot as usize;
                let score = std::mem::take(&mut scores[i]);
                let at = std::mem::replace(&mut first[i], NOT_IN_BODY);
                if tags.is_empty()
                    || self
                        .entry(slot)
                        .is_some_and(|e| tags.iter().all(|t| e.tags.contains(t)))
                {
                    candidates.push(Scored {
                        slot,
                        score,
                        first: (at != NOT_IN_BODY).then_some(at as usize),
                    });
                }
            }
            // Only those that reach the `limit`-th score, ties included.
            if candidates.len() > limit {
                let cut = kth_largest(candidates.iter().map(|c| c.score), limit, &mut scratch);
                candidates.retain(|c| c.score >= cut);
            }
        });
        let mut hits = candidates;
        let id = |s: &Scored| self.entry(s.slot).map_or("", |e| e.id.as_str());
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| id(a).cmp(id(b))));
        hits.truncate(limit);
        hits
    }

    /// The query's distinct terms the index knows, in query order, at most [`MAX_QUERY_TERMS`] distinct ones looked at: one request's work stays
    /// bounded.
    fn query_terms(&self, query: &str, n: f64, base: f64, per_len: f64) -> Vec<QueryTerm> {
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        for term in tokenize(query) {
            if seen.len() == MAX_QUERY_TERMS {
                break;
            }
            if !seen.insert(term.clone()) {
                continue;
            }
            let Some(&id) = self.terms.get(term.as_str()) else {
                continue;
            };
            let list = &self.postings[id as usize];
            if list.is_empty() {
                continue;
            }
            let df = list.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            let b = self.bounds[id as usize];
            let bound = share(idf, b.max_tf, base + per_len * f64::from(b.min_len));
            terms.push(QueryTerm { id, idf, bound });
        }
        terms
    }
}

/// About `width` characters of `body` around byte `at` (the start if `None`), cut at word
/// boundaries, with "…" where it was cut. Walks characters in place: ten snippets a search, so
/// no per-character buffer.
pub fn snippet_at(body: &str, at: Option<usize>, width: usize) -> String {
    // Only a window around the hit is looked at, whatever the body's length.
    let at = at.unwrap_or(0).min(body.len());
    // Bytes: up to 4 per character, and the cut starts a third of the width before the hit.
    let mut lo = at.saturating_sub(width * 2);
    while !body.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (at + width * 3).min(body.len());
    while !body.is_char_boundary(hi) {
        hi += 1;
    }
    let window = &body[lo..hi];
    // The hit's byte in the window, moved onto a character boundary.
    let mut rel = at - lo;
    while !window.is_char_boundary(rel) {
        rel += 1;
    }
    // `from` and `to` are byte offsets in the window; `back` counts characters from `from` to
    // the hit, `span` from `from` to `to`.
    let (mut from, mut back) = (rel, 0);
    for (i, _) in window[..rel].char_indices().rev().take(width / 3) {
        from = i;
        back += 1;
    }
    let (mut to, mut span) = match window[from..].char_indices().nth(width) {
        Some((i, _)) => (from + i, width),
        None => (window.len(), window[from..].chars().count()),
    };
    // Whole words at both ends.
    while from > 0 && from < window.len() {
        let Some((i, c)) = window[..from].char_indices().next_back() else {
            break;
        };
        if c.is_whitespace() {
            break;
        }
        from = i;
        back += 1;
        span += 1;
        if back > width / 2 {
            break;
        }
    }
    while let Some(c) = window[to..].chars().next() {
        if c.is_whitespace() || span >= width + 20 {
            break;
        }
        to += c.len_utf8();
        span += 1;
    }
    let text = window[from..to].trim();
    let mut out = String::with_capacity(text.len() + 8);
    let cut_before = from > 0 || lo > 0;
    let cut_after = to < window.len() || hi < body.len();
    if cut_before {
        out.push('…');
    }
    // Runs of whitespace (line breaks in the source) become one space.
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if cut_after {
        out.push('…');
    }
    out
}

/// About `width` characters of `body` around the first token of `query` found in it (the
/// start if none is).
pub fn snippet(body: &str, query: &str, width: usize) -> String {
    let wanted: HashSet<String> = tokenize(query).into_iter().collect();
    let at = tokens_at(body)
        .into_iter()
        .find(|(_, t)| wanted.contains(t))
        .map(|(at, _)| at);
    snippet_at(body, at, width)
}
