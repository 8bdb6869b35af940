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

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF)
}

/// The tokens of `text`, in order.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut word, &mut out);
            out.push(c.to_string());
            continue;
        }
        if !c.is_alphanumeric() {
            flush(&mut word, &mut out);
            continue;
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
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
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

/// A scored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Slot of the entry.
    pub slot: u32,
    /// BM25 score.
    pub score: f64,
}

/// The index.
#[derive(Debug, Default)]
pub struct Index {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    terms: HashMap<Box<str>, u32>,
    /// Per term id: (slot, weighted term frequency).
    postings: Vec<Vec<(u32, u32)>>,
    docs: u32,
    total_len: u64,
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
        let mut tf: HashMap<String, u32> = HashMap::new();
        let mut len = 0u32;
        for t in tokenize(title) {
            *tf.entry(t).or_default() += TITLE_WEIGHT;
            len += TITLE_WEIGHT;
        }
        for t in tokenize(body) {
            *tf.entry(t).or_default() += 1;
            len += 1;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut terms = Vec::with_capacity(tf.len());
        for (term, n) in tf {
            let next = self.postings.len() as u32;
            let id = *self.terms.entry(term.into_boxed_str()).or_insert(next);
            if id == next {
                self.postings.push(Vec::new());
            }
            self.postings[id as usize].push((slot, n));
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
            if let Some(i) = list.iter().position(|(s, _)| *s == slot) {
                list.swap_remove(i);
            }
        }
        self.free.push(slot);
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
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for term in tokenize(query) {
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
            for &(slot, tf) in list {
                let Some(e) = self.entry(slot) else { continue };
                let tf = f64::from(tf);
                let norm = K1 * (1.0 - B + B * f64::from(e.len) / avg);
                *scores.entry(slot).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<Scored> = scores
            .into_iter()
            .filter(|(slot, _)| {
                tags.is_empty()
                    || self
                        .entry(*slot)
                        .is_some_and(|e| tags.iter().all(|t| e.tags.contains(t)))
            })
            .map(|(slot, score)| Scored { slot, score })
            .collect();
        let id = |s: &Scored| self.entry(s.slot).map_or("", |e| e.id.as_str());
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| id(a).cmp(id(b))));
        hits.truncate(limit);
        hits
    }
}

/// About `width` characters of `body` around the first token of `query` found in it (the
/// start if none is), cut at word boundaries, with "…" where it was cut.
pub fn snippet(body: &str, query: &str, width: usize) -> String {
    let wanted: HashSet<String> = tokenize(query).into_iter().collect();
    // Byte offsets of each word's start, and its token.
    let mut hit = None;
    let mut start = None;
    for (i, c) in body
        .char_indices()
        .chain(std::iter::once((body.len(), ' ')))
    {
        if c.is_alphanumeric() && !is_cjk(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take()
            && tokenize(&body[s..i]).iter().any(|t| wanted.contains(t))
        {
            hit = Some(s);
            break;
        }
        if is_cjk(c) && tokenize(&c.to_string()).iter().any(|t| wanted.contains(t)) {
            hit = Some(i);
            break;
        }
    }
    let chars: Vec<(usize, char)> = body.char_indices().collect();
    let total = chars.len();
    let at = hit.map_or(0, |h| chars.partition_point(|(i, _)| *i < h));
    let mut from = at.saturating_sub(width / 3);
    let mut to = (from + width).min(total);
    // Whole words at both ends.
    while from > 0 && from < total && !chars[from - 1].1.is_whitespace() {
        from -= 1;
        if at - from > width / 2 {
            break;
        }
    }
    while to < total && !chars[to].1.is_whitespace() && to - from < width + 20 {
        to += 1;
    }
    let byte = |i: usize| chars.get(i).map_or(body.len(), |(b, _)| *b);
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.push_str(body[byte(from)..byte(to)].trim());
    if to < total {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
