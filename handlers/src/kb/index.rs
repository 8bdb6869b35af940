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
    /// Its distinct terms, to take it out again.
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

const NOT_IN_BODY: u32 = u32::MAX;

/// A document in the running for the top: ordered by score, then by slot (lower first).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f64,
    slot: u32,
    first: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.slot.cmp(&self.slot))
    }
}

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
    /// Weighted length by slot (0 for a free slot): the scoring loop reads only this.
    lens: Vec<u32>,
    docs: u32,
    total_len: u64,
}

thread_local! {
    /// Per-thread score and first-offset accumulators, kept between searches and cleared by
    /// the search that used them, so a search touches only its postings' slots.
    static ACC: std::cell::RefCell<(Vec<f64>, Vec<u32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
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
            }
            self.postings[id as usize].push(Posting { slot, tf: n, first });
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
            if let Some(i) = list.iter().position(|p| p.slot == slot) {
                list.swap_remove(i);
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
    pub fn search(&self, query: &str, tags: &[String], limit: usize) -> Vec<Scored> {
        let n = f64::from(self.docs.max(1));
        let avg = self.total_len as f64 / n;
        let mut seen = HashSet::new();
        let mut touched: Vec<u32> = Vec::new();
        let mut found: Vec<(u32, f64, u32)> = Vec::new();
        ACC.with(|acc| {
            let mut acc = acc.borrow_mut();
            let (scores, first) = &mut *acc;
            if scores.len() < self.slots.len() {
                scores.resize(self.slots.len(), 0.0);
                first.resize(self.slots.len(), NOT_IN_BODY);
            }
            // At most MAX_QUERY_TERMS distinct terms: one request's work stays bounded.
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
                let per_len = K1 * B / avg;
                let base = K1 * (1.0 - B);
                for p in list {
                    let s = p.slot as usize;
                    let tf = f64::from(p.tf);
                    let norm = base + per_len * f64::from(self.lens[s]);
                    if scores[s] == 0.0 {
                        touched.push(p.slot);
                    }
                    scores[s] += idf * tf * (K1 + 1.0) / (tf + norm);
                    first[s] = first[s].min(p.first);
                }
            }
            // The best `limit` in a bounded heap (worst on top), clearing as it goes.
            let mut heap = std::collections::BinaryHeap::with_capacity(limit + 1);
            for &slot in &touched {
                let i = slot as usize;
                let (score, at) = (scores[i], first[i]);
                scores[i] = 0.0;
                first[i] = NOT_IN_BODY;
                if limit == 0
                    || (!tags.is_empty()
                        && !self
                            .entry(slot)
                            .is_some_and(|e| tags.iter().all(|t| e.tags.contains(t))))
                {
                    continue;
                }
                let c = std::cmp::Reverse(Candidate {
                    score,
                    slot,
                    first: at,
                });
                if heap.len() < limit {
                    heap.push(c);
                } else if heap.peek().is_some_and(|worst| c < *worst) {
                    heap.pop();
                    heap.push(c);
                }
            }
            found = heap
                .into_iter()
                .map(|std::cmp::Reverse(c)| (c.slot, c.score, c.first))
                .collect();
        });
        let mut hits: Vec<Scored> = found
            .into_iter()
            .map(|(slot, score, first)| Scored {
                slot,
                score,
                first: (first != NOT_IN_BODY).then_some(first as usize),
            })
            .collect();
        let id = |s: &Scored| self.entry(s.slot).map_or("", |e| e.id.as_str());
        let order =
            |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then_with(|| id(a).cmp(id(b)));
        hits.sort_by(order);
        hits.truncate(limit);
        hits
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
