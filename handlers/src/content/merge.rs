//! A pack's file laid over the shipped one by id, as text: each file is cut into pieces (a
//! top-level key, a table such as `[biome.desert]`, an entry of an array of tables such as
//! `[[quest]]` with its sub-tables, a Fluent message), a pack's piece takes the place of the
//! shipped pieces with the same id, and new ids follow the shipped ones. Merging text rather
//! than values keeps every line where it came from: the services validate the merged text as
//! they would any file, and [`Merged::locate`] turns a line of it back into the pack's or the
//! shipped file's own line.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::kit::content::{DataError, Source};

/// The key that names an entry of an array of tables, where it is not `id`.
pub const ENTRY_IDS: &[(&str, &str)] = &[
    ("event", "type"),
    ("item", "sku"),
    ("workflow", "name"),
    ("tier", "name"),
    ("gpu", "match"),
];

/// The name of an array-of-tables entry's id key (`id` unless [`ENTRY_IDS`] says otherwise).
pub fn id_key(array: &str) -> &'static str {
    ENTRY_IDS
        .iter()
        .find(|(a, _)| *a == array)
        .map_or("id", |(_, k)| *k)
}

/// One piece of a file: whole lines, with the id it is merged by (`None`: comments, or an entry
/// without an id, which is always kept).
#[derive(Debug)]
struct Piece {
    id: Option<String>,
    /// Top-level keys and the file's opening comments: they must stay before the first table.
    head: bool,
    lines: Range<usize>,
}

/// Where a run of the merged text's lines came from.
#[derive(Debug, Clone)]
struct Origin {
    /// First line of the run in the merged text (1-based).
    at: usize,
    file: String,
    /// The same line in `file`.
    line: usize,
}

/// A file merged from the shipped one and a pack's.
#[derive(Debug)]
pub struct Merged {
    /// The merged text, named as the pack's file.
    pub source: Source,
    origins: Vec<Origin>,
}

impl Merged {
    /// `e` with its line traced back to the file it came from, if it is about this merged text.
    pub fn locate(&self, e: DataError) -> DataError {
        if e.file != self.source.file {
            return e;
        }
        match self.origins.iter().rev().find(|o| o.at <= e.line) {
            Some(o) => DataError {
                file: o.file.clone(),
                line: o.line + (e.line - o.at),
                message: e.message,
            },
            None => e,
        }
    }
}

/// How a file is cut into pieces.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// TOML.
    Toml,
    /// A Fluent `.ftl` file.
    Fluent,
}

/// `pack` laid over `shipped` by id.
pub fn merge(shipped: &Source, pack: &Source, kind: Kind) -> Merged {
    let cut = |s: &Source| match kind {
        Kind::Toml => toml_pieces(&s.text),
        Kind::Fluent => fluent_pieces(&s.text),
    };
    let (ours, theirs) = (cut(shipped), cut(pack));
    let ours_lines: Vec<&str> = shipped.text.lines().collect();
    let theirs_lines: Vec<&str> = pack.text.lines().collect();
    let shipped_ids: BTreeSet<&str> = ours.iter().filter_map(|p| p.id.as_deref()).collect();
    let mut by_id: BTreeMap<&str, Vec<&Piece>> = BTreeMap::new();
    for p in &theirs {
        if let Some(id) = p.id.as_deref() {
            by_id.entry(id).or_default().push(p);
        }
    }
    let mut out = Out::default();
    let mut placed = BTreeSet::new();
    for head in [true, false] {
        for p in ours.iter().filter(|p| p.head == head) {
            match p
                .id
                .as_deref()
                .and_then(|id| by_id.get(id).map(|v| (id, v)))
            {
                // The pack's pieces for this id, all of them, where the first shipped one was.
                Some((id, pieces)) => {
                    if placed.insert(id) {
                        for q in pieces {
                            out.push(&pack.file, &theirs_lines, q);
                        }
                    }
                }
                None => out.push(&shipped.file, &ours_lines, p),
            }
        }
        for p in theirs.iter().filter(|p| p.head == head) {
            if p.id.as_deref().is_none_or(|id| !shipped_ids.contains(id)) {
                out.push(&pack.file, &theirs_lines, p);
            }
        }
    }
    Merged {
        source: Source {
            file: pack.file.clone(),
            text: out.text,
        },
        origins: out.origins,
    }
}

#[derive(Default)]
struct Out {
    text: String,
    origins: Vec<Origin>,
    lines: usize,
}

impl Out {
    fn push(&mut self, file: &str, lines: &[&str], p: &Piece) {
        if p.lines.is_empty() {
            return;
        }
        self.origins.push(Origin {
            at: self.lines + 1,
            file: file.to_owned(),
            line: p.lines.start + 1,
        });
        for l in &lines[p.lines.clone()] {
            self.text.push_str(l);
            self.text.push('\n');
        }
        self.lines += p.lines.len();
    }
}

/// Fluent: a message or term runs from its `id =` line (at column 0) to the next one; comments
/// and blank lines before the first belong to the file's head.
fn fluent_pieces(text: &str) -> Vec<Piece> {
    let mut pieces = vec![Piece {
        id: None,
        head: true,
        lines: 0..0,
    }];
    for (i, line) in text.lines().enumerate() {
        let starts = line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '-');
        match line.split_once('=') {
            Some((id, _)) if starts => pieces.push(Piece {
                id: Some(id.trim().to_owned()),
                head: false,
                lines: i..i + 1,
            }),
            _ => {
                if let Some(last) = pieces.last_mut() {
                    last.lines.end = i + 1;
                }
            }
        }
    }
    pieces
}

/// TOML, line by line: a header line outside strings and values starts a table; `[[a]]` starts
/// an entry of array `a` (id: its [`id_key`]), and `[a.x]`/`[[a.x]]` after it belong to that
/// entry; `[a.b]` is the table `a.b` (with its sub-tables), `[a]` the table `a`; a top-level
/// key before any table is a piece of the head, named by its first key.
fn toml_pieces(text: &str) -> Vec<Piece> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pieces = vec![Piece {
        id: None,
        head: true,
        lines: 0..0,
    }];
    let mut lexer = Lexer::default();
    let mut arrays = BTreeSet::new();
    let mut in_head = true;
    for (i, line) in lines.iter().enumerate() {
        let at_statement = lexer.at_statement();
        let trimmed = line.trim_start();
        if at_statement && trimmed.starts_with('[') {
            in_head = false;
            let (keys, array) = header(trimmed);
            let first = keys.first().cloned().unwrap_or_default();
            let id = if array && keys.len() == 1 {
                arrays.insert(first.clone());
                Some(entry_id(&first, &lines[i + 1..]))
            } else if arrays.contains(&first) {
                // A sub-table of the array's last entry.
                None
            } else if keys.len() == 1 {
                Some(Some(format!("[{first}]")))
            } else {
                Some(Some(format!("[{first}.{}]", keys[1])))
            };
            match id {
                Some(id) => {
                    let continues = id.is_some()
                        && !array
                        && pieces.last().is_some_and(|p| p.id == id && !p.head);
                    if continues {
                        extend(&mut pieces, i);
                    } else {
                        pieces.push(Piece {
                            id,
                            head: false,
                            lines: i..i + 1,
                        });
                    }
                }
                None => extend(&mut pieces, i),
            }
            continue;
        }
        if at_statement && in_head && !trimmed.is_empty() && !trimmed.starts_with('#') {
            let key = split_keys(trimmed.split('=').next().unwrap_or_default());
            pieces.push(Piece {
                id: key.first().map(|k| format!("{k} =")),
                head: true,
                lines: i..i + 1,
            });
        } else {
            extend(&mut pieces, i);
        }
        lexer.line(line);
    }
    pieces
}

fn extend(pieces: &mut [Piece], i: usize) {
    if let Some(last) = pieces.last_mut() {
        last.lines.end = i + 1;
    }
}

/// The id of the array entry whose body starts at `body`: `array#value` of its id key, or `None`
/// when the entry has none (it is then kept as a new entry, and the service says what is
/// missing).
fn entry_id(array: &str, body: &[&str]) -> Option<String> {
    let mut lexer = Lexer::default();
    let mut text = String::new();
    for line in body {
        if lexer.at_statement() && line.trim_start().starts_with('[') {
            break;
        }
        text.push_str(line);
        text.push('\n');
        lexer.line(line);
    }
    let table: toml::Table = toml::from_str(&text).ok()?;
    let id = match table.get(id_key(array))? {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(format!("{array}#{id}"))
}

/// A header line's keys, and whether it is `[[...]]`.
fn header(line: &str) -> (Vec<String>, bool) {
    let array = line.starts_with("[[");
    let inner = line.trim_start_matches('[');
    // The keys end at the first `]` outside quotes.
    let mut end = inner.len();
    let mut quote = None;
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    (split_keys(&inner[..end]), array)
}

/// `a."b.c" . d` is `["a", "b.c", "d"]`.
fn split_keys(s: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut quote = None;
    for c in s.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => keys.push(String::new()),
            (None, c) if c.is_whitespace() => {}
            (_, c) => {
                if let Some(k) = keys.last_mut() {
                    k.push(c);
                }
            }
        }
    }
    keys
}

/// Enough of TOML's lexing to know whether a line starts a statement: not inside a multi-line
/// string, nor inside a value's brackets or braces.
#[derive(Default)]
struct Lexer {
    /// Inside `"""` or `'''`.
    multiline: Option<char>,
    depth: i32,
}

impl Lexer {
    fn at_statement(&self) -> bool {
        self.multiline.is_none() && self.depth <= 0
    }

    fn line(&mut self, line: &str) {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if let Some(q) = self.multiline {
                if q == '"' && b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i..].starts_with(&[q as u8; 3]) {
                    self.multiline = None;
                    i += 3;
                } else {
                    i += 1;
                }
                continue;
            }
            match b[i] {
                b'#' => return,
                q @ (b'"' | b'\'') => {
                    if b[i..].starts_with(&[q; 3]) {
                        self.multiline = Some(q as char);
                        i += 3;
                        continue;
                    }
                    // A one-line string: to its closing quote.
                    i += 1;
                    while i < b.len() && b[i] != q {
                        i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth -= 1,
                _ => {}
            }
            i += 1;
        }
    }
}
