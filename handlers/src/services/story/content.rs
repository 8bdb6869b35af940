//! The story arcs, from `handlers/data/story/arcs.toml` (or an operator's file): small graphs of
//! beats joined by choices, validated with errors that name the file and line (every `next`
//! exists, every beat is reachable, endings have no choices and the rest do, chapters never go
//! back along a choice, and gates name real quests).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source, valid_slug};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    arc: Vec<Spanned<ArcEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArcEntry {
    id: String,
    title: String,
    region: String,
    start: String,
    beat: Vec<Spanned<BeatEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeatEntry {
    id: String,
    chapter: u32,
    text: String,
    #[serde(default)]
    end: bool,
    #[serde(default)]
    choice: Vec<ChoiceEntry>,
    #[serde(default)]
    about: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceEntry {
    id: String,
    label: String,
    next: String,
    #[serde(default)]
    requires_level: u32,
    #[serde(default)]
    requires_quest: String,
}

/// A choice out of a beat.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Its id, unique within the beat.
    pub id: String,
    /// What the player sees.
    pub label: String,
    /// The beat it leads to.
    pub next: String,
    /// Level the player must have reached (0: none).
    pub requires_level: u32,
    /// A quest the player must have completed (empty: none).
    pub requires_quest: String,
}

/// A beat of an arc.
#[derive(Debug, Clone)]
pub struct Beat {
    /// Its id, unique within the arc.
    pub id: String,
    /// Its chapter.
    pub chapter: u32,
    /// What happens.
    pub text: String,
    /// Whether the arc ends here.
    pub end: bool,
    /// Where it can go.
    pub choices: Vec<Choice>,
    /// The canon ids of who and what it names (people, places, items...).
    pub about: Vec<String>,
    line: usize,
}

/// One arc.
#[derive(Debug, Clone)]
pub struct ArcDef {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The region it is set in.
    pub region: String,
    /// The first beat's id.
    pub start: String,
    /// Its beats.
    pub beats: HashMap<String, Beat>,
    line: usize,
}

/// Every arc, in file order.
#[derive(Debug, Clone)]
pub struct Arcs {
    /// The arcs.
    pub list: Vec<ArcDef>,
    file: String,
}

impl Arcs {
    /// Checks the references into other data: gates name quests, arcs are set in regions.
    pub fn check_refs(
        &self,
        is_quest: impl Fn(&str) -> bool,
        is_region: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        for a in &self.list {
            let err = |message: String| DataError {
                file: self.file.clone(),
                line: a.line,
                message,
            };
            if !is_region(&a.region) {
                return Err(err(format!(
                    "arc {}: region {:?} is not a region of the world",
                    a.id, a.region
                )));
            }
            for b in a.beats.values() {
                for c in &b.choices {
                    if !c.requires_quest.is_empty() && !is_quest(&c.requires_quest) {
                        return Err(err(format!(
                            "arc {}: choice {} requires quest {:?}, which does not exist",
                            a.id, c.id, c.requires_quest
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the arcs against the canon: each is set in a canon region (`is_region`), and what
    /// each beat is `about` is in the canon (`is_canon`). The error names the arc's or the
    /// beat's line.
    pub fn check_canon(
        &self,
        is_region: impl Fn(&str) -> bool,
        is_canon: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        for a in &self.list {
            if !is_region(&a.region) {
                return Err(DataError {
                    file: self.file.clone(),
                    line: a.line,
                    message: format!(
                        "arc {}: region {:?} is not a region of the canon (handlers/data/canon.toml)",
                        a.id, a.region
                    ),
                });
            }
            let mut beats: Vec<&Beat> = a.beats.values().collect();
            beats.sort_by_key(|b| b.line);
            for b in beats {
                if let Some(id) = b.about.iter().find(|id| !is_canon(id)) {
                    return Err(DataError {
                        file: self.file.clone(),
                        line: b.line,
                        message: format!(
                            "arc {}: beat {}: about {id:?}, which the canon lacks (handlers/data/canon.toml)",
                            a.id, b.id
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// An arc by id.
    pub fn get(&self, id: &str) -> Option<&ArcDef> {
        self.list.iter().find(|a| a.id == id)
    }
}

impl Content for Arcs {
    const SHIPPED: Embedded = crate::embedded!("story/arcs.toml");

    /// Parses and validates one file.
    fn parse(src: &Source) -> Result<Arcs, DataError> {
        let file: File = src.toml()?;
        let mut list: Vec<ArcDef> = Vec::new();
        for a in &file.arc {
            let e = a.get_ref();
            let bad = |span: std::ops::Range<usize>, m: String| Err(src.error(Some(span), m));
            if !valid_slug(&e.id, 64) || list.iter().any(|x| x.id == e.id) {
                return bad(
                    a.span(),
                    format!(
                        "arc id {:?} must be unique, lowercase letters, digits or '-'",
                        e.id
                    ),
                );
            }
            if e.title.trim().is_empty() || e.region.is_empty() {
                return bad(
                    a.span(),
                    format!("arc {}: title and region are required", e.id),
                );
            }
            let mut beats = HashMap::new();
            for b in &e.beat {
                let be = b.get_ref();
                if !valid_slug(&be.id, 64) || beats.contains_key(&be.id) {
                    return bad(
                        b.span(),
                        format!("arc {}: beat id {:?} must be unique", e.id, be.id),
                    );
                }
                if be.text.trim().is_empty() || be.text.chars().count() > 600 {
                    return bad(
                        b.span(),
                        format!(
                            "arc {}: beat {} needs text (at most 600 characters)",
                            e.id, be.id
                        ),
                    );
                }
                if be.end != be.choice.is_empty() {
                    return bad(
                        b.span(),
                        format!(
                            "arc {}: beat {} {}",
                            e.id,
                            be.id,
                            if be.end {
                                "ends the arc, so it has no choices"
                            } else {
                                "needs a choice (or end = true)"
                            }
                        ),
                    );
                }
                let mut ids = HashSet::new();
                for c in &be.choice {
                    if !valid_slug(&c.id, 64)
                        || !ids.insert(c.id.clone())
                        || c.label.trim().is_empty()
                    {
                        return bad(
                            b.span(),
                            format!(
                                "arc {}: beat {}: choice {:?} needs a unique id and a label",
                                e.id, be.id, c.id
                            ),
                        );
                    }
                }
                beats.insert(
                    be.id.clone(),
                    Beat {
                        id: be.id.clone(),
                        chapter: be.chapter,
                        text: be.text.clone(),
                        end: be.end,
                        about: be.about.clone(),
                        line: src.error(Some(b.span()), "").line,
                        choices: be
                            .choice
                            .iter()
                            .map(|c| Choice {
                                id: c.id.clone(),
                                label: c.label.clone(),
                                next: c.next.clone(),
                                requires_level: c.requires_level,
                                requires_quest: c.requires_quest.clone(),
                            })
                            .collect(),
                    },
                );
            }
            if !beats.contains_key(&e.start) {
                return bad(
                    a.span(),
                    format!("arc {}: start {:?} is not one of its beats", e.id, e.start),
                );
            }
            for b in &e.beat {
                let beat = &beats[&b.get_ref().id];
                for c in &beat.choices {
                    let Some(next) = beats.get(&c.next) else {
                        return bad(
                            b.span(),
                            format!(
                                "arc {}: choice {} leads to {:?}, which is not one of its beats",
                                e.id, c.id, c.next
                            ),
                        );
                    };
                    if next.chapter < beat.chapter {
                        return bad(
                            b.span(),
                            format!(
                                "arc {}: choice {} goes back from chapter {} to {}",
                                e.id, c.id, beat.chapter, next.chapter
                            ),
                        );
                    }
                }
            }
            // Every beat reachable from the start.
            let mut seen = HashSet::from([e.start.clone()]);
            let mut todo = vec![e.start.clone()];
            while let Some(id) = todo.pop() {
                for c in &beats[&id].choices {
                    if seen.insert(c.next.clone()) {
                        todo.push(c.next.clone());
                    }
                }
            }
            if let Some(b) = e.beat.iter().find(|b| !seen.contains(&b.get_ref().id)) {
                return bad(
                    b.span(),
                    format!(
                        "arc {}: beat {} cannot be reached from the start",
                        e.id,
                        b.get_ref().id
                    ),
                );
            }
            list.push(ArcDef {
                id: e.id.clone(),
                title: e.title.clone(),
                region: e.region.clone(),
                start: e.start.clone(),
                beats,
                line: src.error(Some(a.span()), "").line,
            });
        }
        if list.is_empty() {
            return Err(src.error(None, "no arcs"));
        }
        Ok(Arcs {
            list,
            file: src.file.clone(),
        })
    }
}
