//! The canon (`handlers/data/canon.toml`): one list of the world's named things (regions, places,
//! people, factions, creatures, items, events) that every other data file refers to by id, and a
//! list of names known to belong to another world. The services' content refers to canon ids in
//! structured fields, checked by `crate::content` with closures over [`Canon`]; prose is held to
//! the known-wrong list by [`Canon::check_prose`].
//!
//! Kit: imports nothing from the services.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::content::{Content, DataError, Embedded, Source, valid_slug};

const MAX_ID: usize = 64;
const MAX_NAME: usize = 100;

/// What a canon entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A region of the world map.
    Region,
    /// A named place inside a region.
    Place,
    /// Someone, living or remembered.
    Person,
    /// A people, guild, order or company.
    Faction,
    /// A beast or a thing that haunts.
    Creature,
    /// A thing that can be held, sold or lost.
    Item,
    /// Something that happened, or happens again (a comet, a festival).
    Event,
}

/// One named thing of the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id, which other files name.
    pub id: String,
    /// Its name as players read it.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The region it belongs to (none for a region, and for what belongs everywhere).
    pub region: Option<String>,
    /// Other names the world uses for it.
    pub aliases: Vec<String>,
}

/// Names known to belong to another world, everywhere or in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrong {
    /// The wrong names (whole words or phrases).
    pub names: Vec<String>,
    /// Wrong only in this region.
    pub region: Option<String>,
    /// Phrases in which a match is right after all.
    pub unless: Vec<String>,
    /// Match only with this capitalisation.
    pub exact_case: bool,
    /// What the canon says instead.
    pub why: String,
}

/// The canon, by id.
#[derive(Debug, Clone)]
pub struct Canon {
    entries: BTreeMap<String, Entry>,
    /// The known-wrong names.
    pub wrong: Vec<Wrong>,
    /// Where it came from, for errors.
    pub file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    entry: Vec<Spanned<RawEntry>>,
    #[serde(default)]
    wrong: Vec<Spanned<RawWrong>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    name: String,
    kind: Kind,
    region: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWrong {
    names: Vec<String>,
    region: Option<String>,
    #[serde(default)]
    unless: Vec<String>,
    case: Option<String>,
    why: String,
}

fn printable(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

impl Content for Canon {
    const SHIPPED: Embedded = crate::embedded!("canon.toml");

    /// Parses and validates one file: unique ids, known kinds, and every region named is a
    /// region of the canon.
    fn parse(src: &Source) -> Result<Canon, DataError> {
        let file: File = src.toml()?;
        let mut entries = BTreeMap::new();
        for raw in &file.entry {
            let e = raw.get_ref();
            let err = |m: String| src.error(Some(raw.span()), m);
            if !valid_slug(&e.id, MAX_ID) {
                return Err(err(format!(
                    "id {:?}: use 1 to {MAX_ID} lowercase letters, digits or '-'",
                    e.id
                )));
            }
            if !printable(&e.name, MAX_NAME) || !e.aliases.iter().all(|a| printable(a, MAX_NAME)) {
                return Err(err(format!(
                    "{}: name and aliases are 1 to {MAX_NAME} printable characters",
                    e.id
                )));
            }
            match (e.kind, &e.region) {
                (Kind::Region, Some(_)) => {
                    return Err(err(format!("{}: a region belongs to no region", e.id)));
                }
                (Kind::Place | Kind::Person, None) => {
                    return Err(err(format!(
                        "{}: a place or a person needs region = <a region id>",
                        e.id
                    )));
                }
                _ => {}
            }
            let entry = Entry {
                id: e.id.clone(),
                name: e.name.clone(),
                kind: e.kind,
                region: e.region.clone(),
                aliases: e.aliases.clone(),
            };
            if entries.insert(e.id.clone(), entry).is_some() {
                return Err(err(format!("id {:?} is listed twice", e.id)));
            }
        }
        let mut canon = Canon {
            entries,
            wrong: Vec::new(),
            file: src.file.clone(),
        };
        for raw in &file.entry {
            let e = raw.get_ref();
            if let Some(r) = &e.region
                && !canon.is(r, Kind::Region)
            {
                return Err(src.error(
                    Some(raw.span()),
                    format!("{}: region {r:?} is not a region of the canon", e.id),
                ));
            }
        }
        for raw in &file.wrong {
            let w = raw.get_ref();
            let err = |m: String| src.error(Some(raw.span()), m);
            if w.names.is_empty() || !w.names.iter().all(|n| printable(n, MAX_NAME)) {
                return Err(err("wrong: names lists 1 or more names".into()));
            }
            if let Some(r) = &w.region
                && !canon.is(r, Kind::Region)
            {
                return Err(err(format!(
                    "wrong: region {r:?} is not a region of the canon"
                )));
            }
            let exact_case = match w.case.as_deref() {
                None => false,
                Some("exact") => true,
                Some(other) => {
                    return Err(err(format!(
                        "wrong: case is \"exact\" or left out, not {other:?}"
                    )));
                }
            };
            if !printable(&w.why, 400) {
                return Err(err("wrong: why says what the canon says instead".into()));
            }
            // A name the canon gives cannot also be wrong everywhere.
            if w.region.is_none()
                && let Some((name, e)) = w.names.iter().find_map(|n| {
                    canon
                        .entries()
                        .find(|e| {
                            std::iter::once(&e.name)
                                .chain(&e.aliases)
                                .any(|a| a.eq_ignore_ascii_case(n))
                        })
                        .map(|e| (n, e))
                })
            {
                return Err(err(format!(
                    "wrong: {name:?} is the canon's own name for {}",
                    e.id
                )));
            }
            canon.wrong.push(Wrong {
                names: w.names.clone(),
                region: w.region.clone(),
                unless: w.unless.clone(),
                exact_case,
                why: w.why.clone(),
            });
        }
        Ok(canon)
    }
}

/// Where `needle` occurs in `hay` as a whole word or phrase (ASCII case folded unless
/// `exact_case`), as byte ranges.
fn occurrences(hay: &str, needle: &str, exact_case: bool) -> Vec<Range<usize>> {
    let fold = |s: &str| {
        if exact_case {
            s.to_owned()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let (h, n) = (fold(hay), fold(needle));
    // Bytes past ASCII count as letters, so "Café" does not end at "Caf".
    let word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    let bytes = h.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = h.get(from..).and_then(|rest| rest.find(&n)) {
        let (start, end) = (from + at, from + at + n.len());
        let before = start.checked_sub(1).and_then(|i| bytes.get(i));
        let after = bytes.get(end);
        if !before.is_some_and(|&b| word(b)) && !after.is_some_and(|&b| word(b)) {
            found.push(start..end);
        }
        from = start + n.len().max(1);
    }
    found
}

impl Wrong {
    /// The first wrong name in `text` (as a byte offset and the name), if any.
    pub fn find_in(&self, text: &str) -> Option<(usize, &str)> {
        let allowed: Vec<Range<usize>> = self
            .unless
            .iter()
            .flat_map(|u| occurrences(text, u, false))
            .collect();
        self.names
            .iter()
            .flat_map(|name| {
                occurrences(text, name, self.exact_case)
                    .into_iter()
                    .map(move |r| (r, name.as_str()))
            })
            .filter(|(r, _)| !allowed.iter().any(|a| a.start <= r.start && r.end <= a.end))
            .min_by_key(|(r, _)| r.start)
            .map(|(r, name)| (r.start, name))
    }
}

impl Canon {
    /// The entry `id`.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Whether `id` is an entry of `kind`.
    pub fn is(&self, id: &str, kind: Kind) -> bool {
        self.get(id).is_some_and(|e| e.kind == kind)
    }

    /// The person whose canon name is `name`.
    pub fn person_named(&self, name: &str) -> Option<&Entry> {
        self.entries
            .values()
            .find(|e| e.kind == Kind::Person && e.name == name)
    }

    /// Every entry, by id.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Checks a data file's prose (its TOML string values, or a `.ftl` file's messages) against
    /// the known-wrong names. A name wrong in one region is looked for in the tables set there:
    /// a table with `region = "<id>"`, a region's own table (`id = "<region id>"`), a lore
    /// document tagged with exactly one region, a `[region.<id>]` table, or a `[biome.<b>]`
    /// table (in every region of that biome: `regions_of_biome`).
    /// The error names the file and the line of the match.
    pub fn check_prose(
        &self,
        src: &Source,
        regions_of_biome: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<(), DataError> {
        if src.file.ends_with(".ftl") {
            for (i, line) in src.text.lines().enumerate() {
                if line.trim_start().starts_with('#') {
                    continue;
                }
                if let Some((_, message)) = self.wrong_at(line, &[]) {
                    return Err(DataError {
                        file: src.file.clone(),
                        line: i + 1,
                        message,
                    });
                }
            }
            return Ok(());
        }
        let table = DeTable::parse(&src.text)
            .map_err(|e| src.error(e.span(), e.message().trim_end().to_owned()))?;
        let walk = Walk {
            canon: self,
            src,
            regions_of_biome,
        };
        walk.table(table.get_ref(), &[], "")
    }

    /// The first wrong name in `text` (its byte offset, and what is wrong), given the regions
    /// the text is set in.
    fn wrong_at(&self, text: &str, regions: &[String]) -> Option<(usize, String)> {
        self.wrong
            .iter()
            .filter(|w| w.region.as_ref().is_none_or(|r| regions.contains(r)))
            .filter_map(|w| {
                w.find_in(text).map(|(at, name)| {
                    let message = match &w.region {
                        Some(r) => format!("{name:?} is not of this world in {r}: {}", w.why),
                        None => format!("{name:?} is not of this world: {}", w.why),
                    };
                    (at, message)
                })
            })
            .min_by_key(|(at, _)| *at)
    }
}

struct Walk<'a> {
    canon: &'a Canon,
    src: &'a Source,
    regions_of_biome: &'a dyn Fn(&str) -> Vec<String>,
}

impl Walk<'_> {
    /// The regions a table is set in: its own, or those it inherits.
    fn regions_of(&self, t: &DeTable, inherited: &[String], key: &str) -> Vec<String> {
        let string = |k: &str| match t.get(k).map(|v| v.get_ref()) {
            Some(DeValue::String(s)) => Some(s.to_string()),
            _ => None,
        };
        if let Some(r) = string("region").filter(|r| self.canon.is(r, Kind::Region)) {
            return vec![r];
        }
        if let Some(id) = string("id").filter(|r| self.canon.is(r, Kind::Region)) {
            return vec![id];
        }
        if let Some(DeValue::Array(tags)) = t.get("tags").map(|v| v.get_ref()) {
            let regions: Vec<String> = tags
                .iter()
                .filter_map(|t| match t.get_ref() {
                    DeValue::String(s) if self.canon.is(s, Kind::Region) => Some(s.to_string()),
                    _ => None,
                })
                .collect();
            if regions.len() == 1 {
                return regions;
            }
        }
        if let Some(biome) = key.strip_prefix("biome.") {
            return (self.regions_of_biome)(biome);
        }
        // A table keyed by a region id (`[region.ashfen]`) is set there.
        if let Some(r) = key
            .strip_prefix("region.")
            .filter(|r| self.canon.is(r, Kind::Region))
        {
            return vec![r.to_owned()];
        }
        inherited.to_vec()
    }

    fn table(&self, t: &DeTable, inherited: &[String], key: &str) -> Result<(), DataError> {
        let regions = self.regions_of(t, inherited, key);
        for (k, v) in t {
            let path = if key.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{key}.{}", k.get_ref())
            };
            self.value(v, &regions, &path)?;
        }
        Ok(())
    }

    fn value(&self, v: &Spanned<DeValue>, regions: &[String], key: &str) -> Result<(), DataError> {
        match v.get_ref() {
            DeValue::String(s) => match self.canon.wrong_at(s, regions) {
                Some((at, message)) => Err(self.error_in_string(v.span(), s, at, message)),
                None => Ok(()),
            },
            DeValue::Array(items) => items.iter().try_for_each(|i| self.value(i, regions, key)),
            DeValue::Table(t) => self.table(t, regions, key),
            _ => Ok(()),
        }
    }

    /// An error on the line of byte `at` of the string `s`, written at `span`.
    fn error_in_string(
        &self,
        span: Range<usize>,
        s: &str,
        at: usize,
        message: String,
    ) -> DataError {
        let mut e = self.src.error(Some(span.clone()), message);
        let raw = self.src.text.get(span).unwrap_or("");
        // A newline right after an opening """ is not part of the string.
        let trimmed = usize::from(raw.starts_with("\"\"\"\n") || raw.starts_with("'''\n"));
        e.line += trimmed + s.get(..at).unwrap_or("").matches('\n').count();
        e
    }
}

#[cfg(test)]
mod tests;
